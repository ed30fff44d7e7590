/* SPDX-License-Identifier: MIT */
/*
 * Inside the file:// transport: what file.c (confinement, opens, reads) and
 * file_list.c (the directory walk that builds a catalog) share.
 */
#ifndef STOKER_FILE_INT_H
#define STOKER_FILE_INT_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "transports/transport.h"

#define OPEN_FLAGS (O_RDONLY | O_NONBLOCK | O_NOCTTY)

/* Whether st is one of stokerd's AWS credentials or config files (never served). */
bool stk__file_is_secret(const struct stat *st);

/*
 * Opens uri confined and read-only, on a worker thread (it may block on the
 * filesystem, never on a FIFO or a device), and checks it: a regular file
 * (or, with dir_ok, a directory) that is not one of stokerd's credentials
 * files.  Returns an fd, blocking again for a regular file, with *st filled
 * in; or -errno with err naming uri.
 */
int stk__file_open_confined(const char *uri, bool dir_ok, struct stat *st, char *err,
			    size_t errlen);

/*
 * The version of a file's bytes, for noticing a rewrite: inode, size and
 * modification time.  Writes it into buf (len bytes, 80 is enough).
 */
void stk__file_version(const struct stat *st, char *buf, size_t len);

/* The transport's list op (file_list.c). */
int stk__file_list(const char *uri, struct stk_catalog *cat, char *err, size_t errlen);

#endif
