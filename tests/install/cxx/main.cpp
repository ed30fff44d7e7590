// SPDX-License-Identifier: MIT
// A C++ user of the installed headers and libraries: reads object 0 of
// argv[1] through stokerd and prints its bytes; with "gpu" as argv[2], also
// asks libstoker_gpu whether a device is usable (1 or 0, never a crash).
#include <stoker.h>
#include <stoker/gpu.h>

#include <cstdio>
#include <string>

int main(int argc, char **argv)
{
	if (argc < 2) {
		std::fprintf(stderr, "usage: %s DATASET_URI [gpu]\n", argv[0]);
		return 2;
	}
	stk_client *c = nullptr;
	stk_dataset *ds = nullptr;
	stk_view v = {};
	int r = stk_connect(nullptr, &c);
	if (r == 0)
		r = stk_dataset_open(c, argv[1], 0, &ds);
	if (r == 0)
		r = stk_get(ds, 0, &v);
	if (r != 0) {
		std::fprintf(stderr, "%s: %s: %s\n", argv[1], stk_strerror(r), stk_errmsg());
		stk_dataset_close(ds);
		stk_close(c);
		return 1;
	}
	std::string bytes(static_cast<const char *>(v.data), v.size);
	std::printf("object 0: %s", bytes.c_str());
	stk_release(&v);
	if (argc > 2 && std::string(argv[2]) == "gpu") {
		char why[256] = "";
		int a = stk_gpu_available(why, sizeof(why));
		std::printf("stk_gpu_available: %d %s\n", a, why);
		if (a != 0 && a != 1)
			return 1;
	}
	stk_dataset_close(ds);
	stk_close(c);
	return 0;
}
