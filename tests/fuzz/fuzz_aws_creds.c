/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target over the AWS shared credentials and config files
 * (transports/aws_creds.c: its INI reader, as stk__aws_creds_load() runs
 * it).  The input's first byte picks $AWS_PROFILE (unset, "default", "prod"
 * or "p r"); the rest is the credentials file up to the first "\n%%\n", and
 * the config file after it (an input without one has no config file).  The
 * files live in a private temporary directory; no AWS_* variable else is
 * set.  Besides the sanitizers, it checks the result is one of those
 * documented, strings are terminated, an error holds no secret and nothing to
 * free, and the region is set whenever the header says it is.
 */
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/fuzz/fuzz_util.h"
#include "transports/aws_creds.h"

static char dir[64], cred_path[128], conf_path[128];

static void put_file(const char *path, const uint8_t *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	fz_check(fd >= 0);
	while (n) {
		ssize_t w = write(fd, p, n);
		fz_check(w > 0);
		p += w;
		n -= (size_t)w;
	}
	close(fd);
}

static void cleanup(void)
{
	unlink(cred_path);
	unlink(conf_path);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	stk__log_level = STK_LOG_ERROR;
	snprintf(dir, sizeof(dir), "/tmp/stk-fuzz-creds.XXXXXX");
	fz_check(mkdtemp(dir) != NULL);
	snprintf(cred_path, sizeof(cred_path), "%s/credentials", dir);
	snprintf(conf_path, sizeof(conf_path), "%s/config", dir);
	atexit(cleanup);
	static const char *const unset[] = {
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
		"AWS_REGION",	     "AWS_DEFAULT_REGION",    "AWS_PROFILE",
	};
	for (size_t i = 0; i < sizeof(unset) / sizeof(unset[0]); i++)
		unsetenv(unset[i]);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cred_path, 1);
	setenv("AWS_CONFIG_FILE", conf_path, 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const profiles[] = { NULL, "default", "prod", "p r" };
	if (size < 1)
		return 0;
	const char *profile = profiles[data[0] & 3];
	if (profile)
		setenv("AWS_PROFILE", profile, 1);
	else
		unsetenv("AWS_PROFILE");
	data++;
	size--;
	const uint8_t *sep = memmem(data, size, "\n%%\n", 4);
	size_t cl = sep ? (size_t)(sep - data) + 1 : size;
	put_file(cred_path, data, cl);
	if (sep)
		put_file(conf_path, sep + 4, size - cl - 3);
	else
		unlink(conf_path);

	struct stk_aws_creds c;
	memset(&c, 0xa5, sizeof(c));
	char err[1024];
	int r = stk__aws_creds_load(&c, err, sizeof(err));
	fz_check(r == 0 || r == -ENOENT || r == -EINVAL || r == -ENOMEM);
	fz_check(memchr(err, 0, sizeof(err)) != NULL);
	if (r == 0 || r == -ENOENT) {
		fz_check(memchr(c.region, 0, sizeof(c.region)) && c.region[0]);
	}
	if (r == 0) {
		fz_check(memchr(c.access_key, 0, sizeof(c.access_key)) != NULL);
		fz_check(memchr(c.secret_key, 0, sizeof(c.secret_key)) != NULL);
		fz_check(memchr(c.source, 0, sizeof(c.source)) != NULL);
		stk__aws_creds_clear(&c);
	} else {
		/* On an error c holds no secret and nothing to free (aws_creds.h). */
		fz_check(!c.session_token && !c.access_key[0] && !c.secret_key[0]);
	}
	return 0;
}
