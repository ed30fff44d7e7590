/* SPDX-License-Identifier: MIT */
/*
 * AWS credentials and region, found where the AWS CLI looks for them.
 *
 * Keys, in order (the first source that has an access key wins):
 *   1. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN;
 *   2. the shared credentials file, $AWS_SHARED_CREDENTIALS_FILE or
 *      ~/.aws/credentials, section [NAME];
 *   3. the config file, $AWS_CONFIG_FILE or ~/.aws/config, section
 *      [profile NAME] (or [default] for "default");
 * with keys aws_access_key_id, aws_secret_access_key, aws_session_token, and
 * NAME = $AWS_PROFILE, or "default".
 * Region: AWS_REGION, then AWS_DEFAULT_REGION, then `region` in the config
 * file's section for NAME, then "us-east-1".
 *
 * Files are INI as the CLI (Python configparser) reads them: comment lines
 * start with '#' or ';' (there are no inline comments: "key = v # x" has the
 * value "v # x"), key and value are separated by '=' or ':' with blanks
 * around them ignored, keys are case-insensitive, section names are not,
 * indented lines under a key continue it (nested settings such as
 * "s3 =\n  addressing_style = path") and are skipped.  A repeated key takes
 * the last value.  "~" at the start of a path from the environment means
 * $HOME.  An empty environment variable counts as unset.
 *
 * Not supported: SSO, assume-role, credential_process, web identity,
 * container and instance metadata credentials.
 *
 * Secrets are never logged and never appear in an error message or in
 * `source`.
 */
#ifndef STOKER_AWS_CREDS_H
#define STOKER_AWS_CREDS_H

#include <stddef.h>

struct stk_aws_creds {
	char access_key[128];
	char secret_key[128];
	char *session_token; /* malloc'd, or NULL; freed by stk__aws_creds_clear() */
	char region[64];
	/* Where the keys came from, for logs: "environment",
	 * "/home/u/.aws/credentials [prod]", "/home/u/.aws/config [profile prod]". */
	char source[512];
};

/*
 * Fills c (which need not be initialised) as described above.  Returns:
 *   0        keys found; c->region and c->source are set.  The caller calls
 *            stk__aws_creds_clear(c) when done.
 *   -ENOENT  no keys anywhere; err lists every place looked, c->region is
 *            set (an unsigned request to a public bucket still needs it) and
 *            c holds nothing to free.
 *   -EINVAL  a configuration the CLI would refuse: an access key without a
 *            secret key, a value too long for c, a malformed region, or
 *            $AWS_PROFILE naming a profile that is in neither file (a typo
 *            should not silently become anonymous access).  err says which
 *            and where.
 *   -ENOMEM  out of memory.
 *   -errno   a file exists but cannot be read (-EACCES, -EISDIR, ...); err
 *            names it.
 * On every error c holds no secret and nothing to free.  err (errlen bytes,
 * may be NULL if errlen is 0) is always NUL-terminated when errlen > 0.
 * Reads the environment, so not safe against a concurrent setenv().
 */
int stk__aws_creds_load(struct stk_aws_creds *c, char *err, size_t errlen);

/* Wipes the keys (explicit_bzero) and frees the token.  c may be NULL; clearing twice is fine. */
void stk__aws_creds_clear(struct stk_aws_creds *c);

#define STK_AWS_CREDENTIALS_FILE 0 /* $AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials */
#define STK_AWS_CONFIG_FILE	 1 /* $AWS_CONFIG_FILE or ~/.aws/config */

/*
 * The path of one of the files above (which: STK_AWS_*_FILE), found exactly
 * as stk__aws_creds_load() finds it; the file need not exist.  So that
 * file:// can refuse to serve them.  Returns 0 with out set; -ENOENT when
 * there is no home directory to look in, -ENAMETOOLONG when out (cap bytes)
 * is too small, -EINVAL for an unknown which; err says why.  Reads the
 * environment, like stk__aws_creds_load().
 */
int stk__aws_creds_file_path(int which, char *out, size_t cap, char *err, size_t errlen);

#endif
