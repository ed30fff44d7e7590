/* SPDX-License-Identifier: MIT */
/*
 * The input of fuzz_server: a list of records, each { u8 op, u16 len (LE),
 * len bytes }, played in order against one stokerd session.  A record cut
 * short by the end of the input is played with the bytes there are.  The low
 * three bits of op say what the record does; the other five are its param.
 * seeds.c writes inputs in this form; fuzz_server.c plays them.
 */
#ifndef STOKER_FUZZ_SERVER_H
#define STOKER_FUZZ_SERVER_H

enum fuzz_op {
	FZ_DGRAM = 0,	  /* send the bytes as one datagram */
	FZ_OPEN = 1,	  /* OPEN file://ROOT/<bytes>, flags = param: ROOT is the harness's tree */
	FZ_DGRAM_FD = 2,  /* send the bytes with a descriptor attached, as no client should */
	FZ_TICK = 3,	  /* an hour passes: gets waiting on pins expire, idle datasets go */
	FZ_RECONNECT = 4, /* hang up (the daemon releases what the session held), connect anew */
	FZ_READING = 5,	  /* param 0: stop reading replies, so they queue; else read again */
	FZ_OVERSIZE = 6,  /* send STK_MSG_MAX + 1 bytes that begin with the bytes */
	FZ_PINS = 7,	  /* write the bytes into the pin area at param * 256 (as a client may) */
};

#define FZ_OP(kind, param) ((unsigned char)((kind) | (param) << 3))

/*
 * The tree below ROOT that FZ_OPEN names (see fuzz_server.c): ds/ holds
 * objects of 0 to 200000 bytes against a 64 KiB RAM budget (one larger than
 * the budget), manifest.txt lists some of them, a missing file and a wrong
 * size, odd/ holds a FIFO and a symlink out of ROOT.
 */

#endif
