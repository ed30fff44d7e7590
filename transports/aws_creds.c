/* SPDX-License-Identifier: MIT */
/*
 * AWS credentials and region from the environment and the CLI's files; the
 * contract is in aws_creds.h.  Buffers that held a secret (lines read from a
 * file, parsed values) are wiped before they are freed or go out of scope.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "transports/aws_creds.h"

#define DEFAULT_REGION "us-east-1"

/* What one file says for the profile. */
struct ini_vals {
	bool section; /* the profile's section exists */
	bool has_ak, has_sk, has_region;
	char ak[sizeof(((struct stk_aws_creds *)0)->access_key)];
	char sk[sizeof(((struct stk_aws_creds *)0)->secret_key)];
	char region[sizeof(((struct stk_aws_creds *)0)->region)];
	char *token;		/* malloc'd */
	const char *too_long;	/* the key whose value did not fit, or NULL */
	char section_name[160]; /* as written in this file, for messages */
};

static void ini_vals_wipe(struct ini_vals *v)
{
	if (v->token) {
		explicit_bzero(v->token, strlen(v->token));
		free(v->token);
	}
	explicit_bzero(v, sizeof(*v));
}

static void msg(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void msg(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Appends to a message built in err. */
static void append(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *err, size_t errlen, const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (!errlen)
		return;
	n = strnlen(err, errlen);
	if (n >= errlen - 1)
		return;
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Trims s[0..*len) in place: returns the new start, updates *len. */
static char *trim(char *s, size_t *len)
{
	size_t n = *len;

	while (n && is_blank(*s))
		s++, n--;
	while (n && is_blank(s[n - 1]))
		n--;
	*len = n;
	return s;
}

/* $HOME, or the password database's home for this user. 0 or -ENOENT. */
static int home_dir(char *out, size_t cap)
{
	const char *h = env("HOME");
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (!h && !getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) && res && res->pw_dir &&
	    *res->pw_dir)
		h = res->pw_dir;
	if (!h || (size_t)snprintf(out, cap, "%s", h) >= cap)
		return -ENOENT;
	return 0;
}

/*
 * The file named by env var `var` (with "~" as $HOME), or ~/.aws/<name>.
 * 0, or -ENOENT with err set when there is no home to find it in.
 */
static int file_path(const char *var, const char *name, char *out, size_t cap, char *err,
		     size_t errlen)
{
	const char *v = env(var);
	char home[PATH_MAX];
	int n;

	if (v && v[0] != '~') {
		n = snprintf(out, cap, "%s", v);
	} else if (home_dir(home, sizeof(home))) {
		msg(err, errlen, "cannot find the home directory (HOME is not set) to look for %s",
		    v ? v : name);
		return -ENOENT;
	} else if (v) {
		if (v[1] && v[1] != '/') {
			/* "~user/..." is not expanded: take it as a relative path. */
			n = snprintf(out, cap, "%s", v);
		} else {
			n = snprintf(out, cap, "%s%s", home, v + 1);
		}
	} else {
		n = snprintf(out, cap, "%s/.aws/%s", home, name);
	}
	if (n < 0 || (size_t)n >= cap) {
		msg(err, errlen, "the path of the AWS %s file is too long", name);
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Is the section header text s[0..len) the profile's, in this kind of file? */
static bool section_matches(const char *s, size_t len, const char *profile, bool config)
{
	size_t plen = strlen(profile);

	if (config && len > 7 && !memcmp(s, "profile", 7) && is_blank(s[7])) {
		s += 7, len -= 7;
		while (len && is_blank(*s))
			s++, len--;
		return len == plen && !memcmp(s, profile, plen);
	}
	/* In the config file only "default" is named without "profile ". */
	if (config && strcmp(profile, "default"))
		return false;
	return len == plen && !memcmp(s, profile, plen);
}

/* Copies a value into a fixed field; false (and v->too_long = key) when it does not fit. */
static bool store(struct ini_vals *v, const char *key, char *dst, size_t cap, const char *val,
		  size_t len)
{
	if (len >= cap) {
		v->too_long = key;
		return false;
	}
	memcpy(dst, val, len);
	dst[len] = '\0';
	return true;
}

static int assign(struct ini_vals *v, const char *key, size_t klen, const char *val, size_t vlen)
{
	char k[32];

	if (klen >= sizeof(k))
		return 0;
	for (size_t i = 0; i < klen; i++)
		k[i] = (char)tolower((unsigned char)key[i]);
	k[klen] = '\0';
	if (!strcmp(k, "aws_access_key_id")) {
		v->has_ak = store(v, "aws_access_key_id", v->ak, sizeof(v->ak), val, vlen);
	} else if (!strcmp(k, "aws_secret_access_key")) {
		v->has_sk = store(v, "aws_secret_access_key", v->sk, sizeof(v->sk), val, vlen);
	} else if (!strcmp(k, "region")) {
		v->has_region = store(v, "region", v->region, sizeof(v->region), val, vlen);
	} else if (!strcmp(k, "aws_session_token")) {
		char *t = strndup(val, vlen);

		if (!t)
			return -ENOMEM;
		if (v->token) {
			explicit_bzero(v->token, strlen(v->token));
			free(v->token);
		}
		v->token = t;
	}
	return 0;
}

/*
 * Reads the profile's values from one INI file into v (zeroed first).
 * 0; -ENOENT when the file does not exist; -ENOMEM; or -errno when it
 * cannot be read.
 */
static int ini_read(const char *path, const char *profile, bool config, struct ini_vals *v)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool in_section = false;
	long key_indent = -1; /* indentation of the last key line, -1 after a header */
	int r = 0;

	memset(v, 0, sizeof(*v));
	f = fopen(path, "re");
	if (!f)
		return -errno;
	errno = 0;
	while ((n = getline(&line, &cap, f)) > 0) {
		size_t len = (size_t)n, indent = 0;
		char *s = line, *delim;

		while (indent < len && is_blank(s[indent]) && s[indent] != '\n')
			indent++;
		s = trim(s, &len);
		if (!len || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			char *close = memrchr(s, ']', len);
			size_t sl;
			char *name;

			if (!close)
				continue;
			sl = (size_t)(close - s - 1);
			name = trim(s + 1, &sl);
			in_section = section_matches(name, sl, profile, config);
			if (in_section) {
				v->section = true;
				snprintf(v->section_name, sizeof(v->section_name), "%.*s", (int)sl,
					 name);
			}
			key_indent = -1;
			continue;
		}
		if (key_indent >= 0 && (long)indent > key_indent)
			continue; /* a continuation line of the previous key */
		key_indent = (long)indent;
		delim = s;
		while (delim < s + len && *delim != '=' && *delim != ':')
			delim++;
		if (!in_section || delim == s + len)
			continue;
		{
			size_t klen = (size_t)(delim - s), vlen = len - klen - 1;
			char *key = trim(s, &klen), *val = trim(delim + 1, &vlen);

			r = assign(v, key, klen, val, vlen);
			if (r)
				break;
		}
	}
	if (!r && ferror(f))
		r = errno ? -errno : -EIO; /* e.g. -EISDIR */
	if (line) {
		explicit_bzero(line, cap);
		free(line);
	}
	fclose(f);
	return r;
}

static bool valid_region(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

/* Moves keys found in a file into c.  0 or -EINVAL (err set). */
static int take_file_keys(struct stk_aws_creds *c, struct ini_vals *v, const char *path, char *err,
			  size_t errlen)
{
	if (!v->has_sk) {
		msg(err, errlen,
		    "%s [%s]: aws_access_key_id is set but aws_secret_access_key is not", path,
		    v->section_name);
		return -EINVAL;
	}
	memcpy(c->access_key, v->ak, sizeof(c->access_key));
	memcpy(c->secret_key, v->sk, sizeof(c->secret_key));
	c->session_token = v->token;
	v->token = NULL;
	/* A path too long for the label is shown cut, marked with "...". */
	if (snprintf(c->source, sizeof(c->source), "%s [%s]", path, v->section_name) >=
	    (int)sizeof(c->source))
		memcpy(c->source + sizeof(c->source) - 4, "...", 4);
	return 0;
}

/* Describes, for the -ENOENT message, what one file said. */
static void describe(char *err, size_t errlen, const char *path, int rr, const struct ini_vals *v,
		     const char *want)
{
	if (rr == -ENOENT)
		append(err, errlen, "; %s: no such file", path);
	else if (!v->section)
		append(err, errlen, "; %s: no [%s]", path, want);
	else
		append(err, errlen, "; %s [%s]: no aws_access_key_id", path, v->section_name);
}

int stk__aws_creds_load(struct stk_aws_creds *c, char *err, size_t errlen)
{
	const char *profile = env("AWS_PROFILE"), *region = env("AWS_REGION");
	const char *ak = env("AWS_ACCESS_KEY_ID");
	char cred_path[PATH_MAX], conf_path[PATH_MAX], conf_want[192];
	struct ini_vals cv, fv;
	int cr = -ENOENT, fr = -ENOENT, r;
	bool found = false, explicit_profile = profile != NULL;

	memset(c, 0, sizeof(*c));
	memset(&cv, 0, sizeof(cv));
	memset(&fv, 0, sizeof(fv));
	if (errlen)
		err[0] = '\0';
	if (!profile)
		profile = "default";
	if (!region)
		region = env("AWS_DEFAULT_REGION");
	snprintf(conf_want, sizeof(conf_want), "%s%s", strcmp(profile, "default") ? "profile " : "",
		 profile);

	/* 1. The environment. */
	if (ak) {
		const char *sk = env("AWS_SECRET_ACCESS_KEY"), *tok = env("AWS_SESSION_TOKEN");

		if (!sk) {
			msg(err, errlen,
			    "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
			r = -EINVAL;
			goto fail;
		}
		if (strlen(ak) >= sizeof(c->access_key) || strlen(sk) >= sizeof(c->secret_key)) {
			msg(err, errlen, "AWS_%s is too long (at most %zu bytes)",
			    strlen(ak) >= sizeof(c->access_key) ? "ACCESS_KEY_ID"
								: "SECRET_ACCESS_KEY",
			    sizeof(c->access_key) - 1);
			r = -EINVAL;
			goto fail;
		}
		memcpy(c->access_key, ak, strlen(ak) + 1);
		memcpy(c->secret_key, sk, strlen(sk) + 1);
		if (tok && !(c->session_token = strdup(tok))) {
			r = -ENOMEM;
			goto fail;
		}
		snprintf(c->source, sizeof(c->source), "environment");
		found = true;
	}

	/* 2. The shared credentials file. */
	if (!found) {
		r = file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", cred_path,
			      sizeof(cred_path), err, errlen);
		if (r)
			goto fail;
		cr = ini_read(cred_path, profile, false, &cv);
		if (cr && cr != -ENOENT) {
			r = cr;
			msg(err, errlen, "cannot read %s: %s", cred_path, strerror(-cr));
			goto fail;
		}
		if (cv.too_long && strcmp(cv.too_long, "region")) {
			msg(err, errlen, "%s [%s]: %s is too long", cred_path, cv.section_name,
			    cv.too_long);
			r = -EINVAL;
			goto fail;
		}
		if (cv.has_ak) {
			r = take_file_keys(c, &cv, cred_path, err, errlen);
			if (r)
				goto fail;
			found = true;
		}
	}

	/* 3. The config file: keys as a last resort, and the region. */
	if (!found || !region) {
		r = file_path("AWS_CONFIG_FILE", "config", conf_path, sizeof(conf_path), err,
			      errlen);
		if (r)
			goto fail;
		fr = ini_read(conf_path, profile, true, &fv);
		if (fr && fr != -ENOENT) {
			r = fr;
			msg(err, errlen, "cannot read %s: %s", conf_path, strerror(-fr));
			goto fail;
		}
		if (fv.too_long) {
			msg(err, errlen, "%s [%s]: %s is too long", conf_path, fv.section_name,
			    fv.too_long);
			r = -EINVAL;
			goto fail;
		}
		if (!found && fv.has_ak) {
			r = take_file_keys(c, &fv, conf_path, err, errlen);
			if (r)
				goto fail;
			found = true;
		}
		if (!region && fv.has_region)
			region = fv.region;
	}

	if (!region)
		region = DEFAULT_REGION;
	if (strlen(region) >= sizeof(c->region) || !valid_region(region)) {
		msg(err, errlen, "region '%.64s' is not a valid region name", region);
		r = -EINVAL;
		goto fail;
	}
	memcpy(c->region, region, strlen(region) + 1);

	if (!found) {
		if (explicit_profile && !cv.section && !fv.section) {
			msg(err, errlen,
			    "AWS_PROFILE names profile '%s', which is in neither %s nor %s",
			    profile, cred_path, conf_path);
			r = -EINVAL;
			goto fail;
		}
		msg(err, errlen, "no AWS credentials found: AWS_ACCESS_KEY_ID is not set");
		describe(err, errlen, cred_path, cr, &cv, profile);
		describe(err, errlen, conf_path, fr, &fv, conf_want);
		r = -ENOENT;
		ini_vals_wipe(&cv);
		ini_vals_wipe(&fv);
		/* Keep the region for unsigned requests; nothing else is set. */
		return r;
	}
	ini_vals_wipe(&cv);
	ini_vals_wipe(&fv);
	return 0;

fail:
	ini_vals_wipe(&cv);
	ini_vals_wipe(&fv);
	stk__aws_creds_clear(c);
	return r;
}

void stk__aws_creds_clear(struct stk_aws_creds *c)
{
	if (!c)
		return;
	if (c->session_token) {
		explicit_bzero(c->session_token, strlen(c->session_token));
		free(c->session_token);
	}
	explicit_bzero(c, sizeof(*c));
}

int stk__aws_creds_file_path(int which, char *out, size_t cap, char *err, size_t errlen)
{
	if (which == STK_AWS_CREDENTIALS_FILE)
		return file_path("AWS_SHARED_CREDENTIALS_FILE", "credentials", out, cap, err,
				 errlen);
	if (which == STK_AWS_CONFIG_FILE)
		return file_path("AWS_CONFIG_FILE", "config", out, cap, err, errlen);
	msg(err, errlen, "no such AWS file: %d", which);
	return -EINVAL;
}
