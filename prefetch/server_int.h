/* SPDX-License-Identifier: MIT */
/*
 * Inside client sessions: what server.c (the request handlers) and session.c
 * (the connections: receiving, sending, a session's start and end) share.
 * The rest of the daemon uses daemon.h.
 */
#ifndef STOKER_SERVER_INT_H
#define STOKER_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>

#include "prefetch/daemon.h"
#include "proto/proto.h"

/* Room for any reply but ENDPOINTS: the largest is STATUS with its error message. */
#define REPLY_MAX (STK_HDR_SIZE + 64 + STK_ERRMSG_MAX)

/* Drops a ref on s; the last one frees it. */
void stk__session_unref(struct stk_daemon *d, struct stk_session *s);
/* Ends a session: releases what it held; the memory goes when the last ref does. */
void stk__session_kill(struct stk_daemon *d, struct stk_session *s, const char *why);
/*
 * Sends a datagram of len bytes (an stk__enc_reply_* result), passing fd (not
 * consumed) if >= 0; queues it if the socket is full.
 */
void stk__send_msg(struct stk_daemon *d, struct stk_session *s, const uint8_t *buf, long len,
		   int fd);
/* Sends an error reply to the request h. */
void stk__reply_err(struct stk_daemon *d, struct stk_session *s, const struct stk_msg_hdr *h,
		    int err, const char *msg);
/* Decodes one datagram from s and hands it to its type's handler (server.c). */
void stk__handle_msg(struct stk_daemon *d, struct stk_session *s, const uint8_t *buf, size_t n);

#endif
