/* SPDX-License-Identifier: MIT */
/* Starting the servers the end-to-end tests talk to. */
#ifndef STOKER_TEST_SPAWN_H
#define STOKER_TEST_SPAWN_H

#include <sys/types.h>

/*
 * Starts exe with argv and envp (NULL: the test's own environment), stdin
 * from /dev/null and stdout and stderr appended to log.  The child dies with
 * the test (PR_SET_PDEATHSIG), inherits no other descriptor and no blocked
 * signal.  Returns its pid, or -errno if it could not be started; a failed
 * exec shows in log and as exit status 127.
 */
pid_t stk_test_spawn(const char *exe, const char *const *argv, char *const *envp, const char *log);

#endif
