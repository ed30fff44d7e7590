/* SPDX-License-Identifier: MIT */
/*
 * What stokerd gives up once it has started: the right to gain privileges
 * (PR_SET_NO_NEW_PRIVS), its capabilities and, with --seccomp, every system
 * call it does not need (below).
 *
 * Everything that could need a privilege happens before: binding the socket
 * and the metrics port, creating the RAM tier (hugetlb pages need reserved
 * pages, not a capability), opening tier 1's directory, raising
 * RLIMIT_NOFILE.  Afterwards a stokerd started as root keeps only
 * CAP_DAC_READ_SEARCH, so that it still reads every dataset below
 * --allow-root as it did before (root's way of reading is a capability); one
 * started as any other user keeps none.  capget/capset are called directly:
 * libcap is not a dependency.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "prefetch/daemon.h"

int stk__sandbox_no_new_privs(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		int r = -errno;
		stk_err("PR_SET_NO_NEW_PRIVS: %s", strerror(-r));
		return r;
	}
	return 0;
}

/* The highest capability this kernel knows, from /proc; CAP_LAST_CAP if unknown. */
static int last_cap(void)
{
	for (int c = 63; c > CAP_LAST_CAP; c--)
		if (prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0)
			return c;
	return CAP_LAST_CAP;
}

int stk__sandbox_drop_caps(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct cur[2] = { 0 }, want[2] = { 0 };
	int keep = geteuid() == 0 ? CAP_DAC_READ_SEARCH : -1;
	if (syscall(SYS_capget, &h, cur) < 0) {
		int r = -errno;
		stk_err("capget: %s", strerror(-r));
		return r;
	}
	/* The bounding set first: dropping from it needs CAP_SETPCAP, dropped below. */
	if (cur[CAP_SETPCAP / 32].effective & CAP_TO_MASK(CAP_SETPCAP))
		for (int c = 0, last = last_cap(); c <= last; c++)
			if (c != keep && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno != EINVAL)
				stk_warn("PR_CAPBSET_DROP %d: %s", c, strerror(errno));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (keep >= 0 && cur[CAP_TO_INDEX(keep)].permitted & CAP_TO_MASK(keep)) {
		want[CAP_TO_INDEX(keep)].permitted = CAP_TO_MASK(keep);
		want[CAP_TO_INDEX(keep)].effective = CAP_TO_MASK(keep);
	}
	if (syscall(SYS_capset, &h, want) < 0) {
		int r = -errno;
		stk_err("capset: %s", strerror(-r));
		return r;
	}
	stk_info("capabilities dropped%s",
		 want[0].permitted ? " (kept CAP_DAC_READ_SEARCH: stokerd runs as root)" : "");
	return 0;
}

/*
 * --seccomp: an allow-list of the system calls stokerd makes once started,
 * its libraries' (libcurl, OpenSSL, libmicrohttpd, zstd, glibc's resolver)
 * included.  Any other call kills the whole process with SIGSYS
 * (SECCOMP_RET_KILL_PROCESS), so that a call missing from the list shows at
 * once, in tests, rather than as an odd error later.  Threads may be made
 * (clone with CLONE_THREAD); processes may not, nor may a program be run.
 * clone3 answers ENOSYS, as its flags are out of a filter's reach, and glibc
 * then uses clone.  Installed with TSYNC, so the threads already running
 * (workers, transfer loops, the metrics server) are covered too.
 *
 * io_uring's operations do not pass through seccomp: the ring can open and
 * read files beneath --allow-root (openat2 with RESOLVE_BENEATH), which is
 * what it is for.
 */

#if defined(__x86_64__)
#define SECCOMP_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define SECCOMP_ARCH AUDIT_ARCH_AARCH64
#endif

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1 /* LeakSanitizer stops the world with ptrace from a clone()d task */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif

static const int allowed[] = {
	/* I/O on descriptors */
	__NR_read,
	__NR_write,
	__NR_readv,
	__NR_writev,
	__NR_pread64,
	__NR_pwrite64,
	__NR_preadv,
	__NR_pwritev,
	__NR_preadv2,
	__NR_pwritev2,
	__NR_lseek,
	__NR_close,
	__NR_close_range,
	__NR_fcntl,
	__NR_ioctl,
	__NR_dup,
	__NR_dup3,
	__NR_pipe2,
	__NR_sendfile,
	__NR_splice,
	__NR_fstat,
	__NR_newfstatat,
	__NR_statx,
	__NR_fstatfs,
	__NR_statfs,
	__NR_ftruncate,
	__NR_fallocate,
	__NR_fsync,
	__NR_fdatasync,
	__NR_fadvise64,
	__NR_readahead,
	__NR_flock,
	/* files (tier 1, file://, credentials files, /proc, resolv.conf) */
	__NR_openat,
	__NR_openat2,
	__NR_getdents64,
	__NR_mkdirat,
	__NR_unlinkat,
	__NR_renameat,
	__NR_renameat2,
	__NR_linkat,
	__NR_readlinkat,
	__NR_faccessat,
	__NR_faccessat2,
	__NR_fchmod,
	__NR_fchmodat,
	__NR_umask,
	__NR_getcwd,
	/* memory */
	__NR_mmap,
	__NR_munmap,
	__NR_mprotect,
	__NR_mremap,
	__NR_madvise,
	__NR_brk,
	__NR_msync,
	__NR_mincore,
	__NR_mlock,
	__NR_munlock,
	__NR_memfd_create,
	__NR_membarrier,
	/* waiting and events */
	__NR_poll,
	__NR_ppoll,
	__NR_pselect6,
	__NR_epoll_create1,
	__NR_epoll_ctl,
	__NR_epoll_wait,
	__NR_epoll_pwait,
	__NR_epoll_pwait2,
	__NR_eventfd2,
	__NR_signalfd4,
	__NR_timerfd_create,
	__NR_timerfd_settime,
	__NR_timerfd_gettime,
	__NR_futex,
	__NR_futex_waitv,
	__NR_nanosleep,
	__NR_clock_nanosleep,
	__NR_clock_gettime,
	__NR_clock_getres,
	__NR_gettimeofday,
	__NR_sched_yield,
	__NR_io_uring_setup,
	__NR_io_uring_enter,
	__NR_io_uring_register,
	/* sockets: clients, metrics, http/s3 */
	__NR_socket,
	__NR_socketpair,
	__NR_connect,
	__NR_accept,
	__NR_accept4,
	__NR_bind,
	__NR_listen,
	__NR_getsockname,
	__NR_getpeername,
	__NR_setsockopt,
	__NR_getsockopt,
	__NR_sendto,
	__NR_recvfrom,
	__NR_sendmsg,
	__NR_recvmsg,
	__NR_sendmmsg,
	__NR_recvmmsg,
	__NR_shutdown,
	/* threads, signals, process state */
	__NR_exit,
	__NR_exit_group,
	__NR_set_robust_list,
	__NR_get_robust_list,
	__NR_set_tid_address,
	__NR_rseq,
	__NR_sched_getaffinity,
	__NR_sched_setaffinity,
	__NR_rt_sigaction,
	__NR_rt_sigprocmask,
	__NR_rt_sigreturn,
	__NR_rt_sigtimedwait,
	__NR_sigaltstack,
	__NR_tgkill,
	__NR_tkill,
	__NR_getpid,
	__NR_gettid,
	__NR_getppid,
	__NR_getuid,
	__NR_geteuid,
	__NR_getgid,
	__NR_getegid,
	__NR_getgroups,
	__NR_getresuid,
	__NR_getresgid,
	__NR_uname,
	__NR_sysinfo,
	__NR_getrusage,
	__NR_getrlimit,
	__NR_prlimit64,
	__NR_getrandom,
	__NR_prctl,
	__NR_capget,
	__NR_restart_syscall,
#ifdef __NR_open /* x86_64's older calls, which libraries still make */
	__NR_open,
	__NR_stat,
	__NR_lstat,
	__NR_access,
	__NR_readlink,
	__NR_unlink,
	__NR_mkdir,
	__NR_rename,
	__NR_dup2,
	__NR_pipe,
	__NR_select,
	__NR_epoll_wait,
	__NR_epoll_create,
	__NR_eventfd,
	__NR_signalfd,
	__NR_time,
	__NR_getdents,
	__NR_chmod,
	__NR_arch_prctl,
#endif
#ifdef SANITIZED
	__NR_ptrace,
	__NR_wait4,
	__NR_process_vm_readv,
	__NR_sched_getparam,
#endif
};

#define NALLOWED (sizeof(allowed) / sizeof(allowed[0]))

int stk__sandbox_seccomp(void)
{
#ifndef SECCOMP_ARCH
	stk_err("--seccomp: not supported on this architecture");
	return -ENOTSUP;
#else
	/* Load the arch and number; clone is checked, clone3 refused, the list allowed. */
	struct sock_filter f[8 + 2 * NALLOWED + 8];
	unsigned n = 0;
#define STMT(c, k)	 f[n++] = (struct sock_filter)BPF_STMT(c, k)
#define JUMP(c, k, t, e) f[n++] = (struct sock_filter)BPF_JUMP(c, k, t, e)
	STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	JUMP(BPF_JMP | BPF_JEQ | BPF_K, SECCOMP_ARCH, 1, 0);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
#ifdef __X32_SYSCALL_BIT
	JUMP(BPF_JMP | BPF_JGE | BPF_K, __X32_SYSCALL_BIT, 0, 1);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#endif
	for (size_t i = 0; i < NALLOWED; i++) {
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)allowed[i], 0, 1);
		STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	}
	JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS);
#ifdef SANITIZED
	JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 1);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#else
	/* clone(flags, ...): a thread (CLONE_THREAD in the low word of flags) or nothing. */
	JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3);
	STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]));
	JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_THREAD, 0, 1);
	STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
#endif
	STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
#undef STMT
#undef JUMP
	struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog) != 0) {
		int r = errno ? -errno : -ESRCH;
		stk_err("--seccomp: cannot install the filter: %s", strerror(-r));
		return r;
	}
	stk_info("seccomp filter installed: %zu system calls allowed, any other kills stokerd "
		 "(SIGSYS)",
		 NALLOWED + 1);
	return 0;
#endif
}
