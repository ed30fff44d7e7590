/* SPDX-License-Identifier: MIT */
/*
 * Tests of transports/aws_creds.c.  Each test gets an empty temporary HOME
 * and no AWS_* variables; fini restores the environment as it was.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transports/aws_creds.h"

static const char *const vars[] = {
	"HOME",
	"AWS_ACCESS_KEY_ID",
	"AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN",
	"AWS_PROFILE",
	"AWS_REGION",
	"AWS_DEFAULT_REGION",
	"AWS_SHARED_CREDENTIALS_FILE",
	"AWS_CONFIG_FILE",
};
#define NVARS (sizeof(vars) / sizeof(vars[0]))

static char *saved[NVARS];
static char home[64];
static struct stk_aws_creds c;
static char err[1024];

static void setup(void)
{
	for (size_t i = 0; i < NVARS; i++) {
		const char *v = getenv(vars[i]);

		saved[i] = v ? strdup(v) : NULL;
		unsetenv(vars[i]);
	}
	snprintf(home, sizeof(home), "/tmp/stk-creds-XXXXXX");
	cr_assert_not_null(mkdtemp(home));
	setenv("HOME", home, 1);
	memset(&c, 0xa5, sizeof(c)); /* load must not rely on a zeroed struct */
	err[0] = '\0';
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	return remove(p);
}

static void teardown(void)
{
	stk__aws_creds_clear(&c);
	nftw(home, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	for (size_t i = 0; i < NVARS; i++) {
		if (saved[i])
			setenv(vars[i], saved[i], 1);
		else
			unsetenv(vars[i]);
		free(saved[i]);
	}
}

/* Writes text to HOME/rel, creating HOME/.aws if needed; returns the full path. */
static const char *put_file(const char *rel, const char *text)
{
	static char path[256];
	char dir[128];
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/.aws", home);
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/%s", home, rel);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fputs(text, f);
	fclose(f);
	return path;
}

TestSuite(aws_creds, .init = setup, .fini = teardown, .timeout = 10);

static const char *cred_file = "# written by aws configure\n"
			       "[other]\n"
			       "aws_access_key_id = AKIDOTHER\n"
			       "aws_secret_access_key = secretother\n"
			       "\n"
			       "; the default profile\n"
			       "[default]\n"
			       "  AWS_Access_Key_ID   =   AKIDDEFAULT  \n"
			       "aws_secret_access_key=secret/default+key\r\n"
			       "\n"
			       "[prod]\n"
			       "aws_access_key_id: AKIDPROD\n"
			       "aws_secret_access_key : secretprod\n"
			       "aws_session_token = tok=en/prod==\n";

Test(aws_creds, environment_comes_first)
{
	put_file(".aws/credentials", cred_file);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.access_key, "AKIDENV");
	cr_assert_str_eq(c.secret_key, "secretenv");
	cr_assert_str_eq(c.session_token, "tokenenv");
	cr_assert_str_eq(c.source, "environment");
	cr_assert_str_eq(c.region, "us-east-1");
}

Test(aws_creds, environment_without_secret_is_an_error)
{
	put_file(".aws/credentials", cred_file);
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "", 1); /* empty counts as unset */
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "AWS_SECRET_ACCESS_KEY"), "%s", err);
	cr_assert_null(c.session_token);
	cr_assert_eq(c.access_key[0], '\0', "nothing is left behind on error");
}

Test(aws_creds, default_profile_with_comments_blanks_and_key_case)
{
	put_file(".aws/credentials", cred_file);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.access_key, "AKIDDEFAULT");
	cr_assert_str_eq(c.secret_key, "secret/default+key");
	cr_assert_null(c.session_token);
	cr_assert(strstr(c.source, "/.aws/credentials [default]"), "%s", c.source);
	cr_assert_str_eq(c.region, "us-east-1");
}

Test(aws_creds, aws_profile_selects_the_section)
{
	put_file(".aws/credentials", cred_file);
	setenv("AWS_PROFILE", "prod", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.access_key, "AKIDPROD");
	cr_assert_str_eq(c.secret_key, "secretprod");
	cr_assert_str_eq(c.session_token, "tok=en/prod==");
	cr_assert(strstr(c.source, "[prod]"), "%s", c.source);
}

Test(aws_creds, missing_named_profile_is_an_error)
{
	put_file(".aws/credentials", cred_file);
	setenv("AWS_PROFILE", "nope", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "'nope'"), "%s", err);
	cr_assert(strstr(err, "/.aws/credentials"), "%s", err);
	cr_assert(strstr(err, "/.aws/config"), "%s", err);
}

Test(aws_creds, nothing_anywhere_is_enoent_and_lists_where_it_looked)
{
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "AWS_ACCESS_KEY_ID"), "%s", err);
	cr_assert(strstr(err, "/.aws/credentials: no such file"), "%s", err);
	cr_assert(strstr(err, "/.aws/config: no such file"), "%s", err);
	cr_assert_str_eq(c.region, "us-east-1", "the region is set even so");
	cr_assert_null(c.session_token);
	cr_assert_eq(c.access_key[0], '\0');
}

Test(aws_creds, default_section_without_keys_is_enoent)
{
	put_file(".aws/credentials", "[default]\nregion = eu-west-1\n");
	put_file(".aws/config", "[profile x]\nregion = eu-west-2\n");
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "credentials [default]: no aws_access_key_id"), "%s", err);
	cr_assert(strstr(err, "config: no [default]"), "%s", err);
	/* The credentials file never supplies the region. */
	cr_assert_str_eq(c.region, "us-east-1");
}

Test(aws_creds, key_without_secret_in_a_file_is_an_error)
{
	put_file(".aws/credentials", "[default]\naws_access_key_id = AKID\n");
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "aws_secret_access_key is not"), "%s", err);
}

Test(aws_creds, too_long_secret_is_refused_without_echoing_it)
{
	char text[400];

	snprintf(text, sizeof(text),
		 "[default]\naws_access_key_id = AKID\n"
		 "aws_secret_access_key = %0200d\n",
		 7);
	put_file(".aws/credentials", text);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "aws_secret_access_key is too long"), "%s", err);
	cr_assert_null(strstr(err, "00000"), "%s", err);
}

Test(aws_creds, region_precedence)
{
	put_file(".aws/config", "[default]\nregion = eu-west-1\n"
				"[prod]\nregion = wrong-1\n"
				"[profile   prod]\nregion = ap-south-1\n");
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);

	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.region, "eu-west-1");
	stk__aws_creds_clear(&c);

	/* [prod] is not a profile in the config file; [profile prod] is. */
	setenv("AWS_PROFILE", "prod", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.region, "ap-south-1");
	stk__aws_creds_clear(&c);

	setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.region, "us-west-2");
	stk__aws_creds_clear(&c);

	setenv("AWS_REGION", "ca-central-1", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.region, "ca-central-1");
}

Test(aws_creds, profile_default_may_be_written_with_the_prefix)
{
	put_file(".aws/config", "[profile default]\nregion = sa-east-1\n");
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(c.region, "sa-east-1");
}

Test(aws_creds, config_file_keys_are_the_last_resort)
{
	put_file(".aws/config", "[profile dev]\n"
				"aws_access_key_id = AKIDCONF\n"
				"aws_secret_access_key = secretconf\n"
				"region = eu-north-1\n");
	put_file(".aws/credentials", "[default]\naws_access_key_id = AKIDDEF\n"
				     "aws_secret_access_key = s\n");
	setenv("AWS_PROFILE", "dev", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.access_key, "AKIDCONF");
	cr_assert(strstr(c.source, "/.aws/config [profile dev]"), "%s", c.source);
	cr_assert_str_eq(c.region, "eu-north-1");
}

Test(aws_creds, credentials_file_beats_config_file)
{
	put_file(".aws/config", "[default]\naws_access_key_id = AKIDCONF\n"
				"aws_secret_access_key = secretconf\n");
	put_file(".aws/credentials", "[default]\naws_access_key_id = AKIDCRED\n"
				     "aws_secret_access_key = secretcred\n");
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.access_key, "AKIDCRED");
}

Test(aws_creds, file_locations_from_the_environment)
{
	char p[256];

	put_file("creds.ini", "[default]\naws_access_key_id = AKIDALT\n"
			      "aws_secret_access_key = secretalt\n");
	put_file("conf.ini", "[default]\nregion = me-south-1\n");
	/* Decoys where the defaults would look. */
	put_file(".aws/credentials", "[default]\naws_access_key_id = AKIDDEF\n"
				     "aws_secret_access_key = s\n");
	put_file(".aws/config", "[default]\nregion = eu-west-1\n");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "~/creds.ini", 1);
	snprintf(p, sizeof(p), "%s/conf.ini", home);
	setenv("AWS_CONFIG_FILE", p, 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.access_key, "AKIDALT");
	cr_assert_str_eq(c.region, "me-south-1");
	snprintf(p, sizeof(p), "%s/creds.ini [default]", home);
	cr_assert_str_eq(c.source, p);
}

Test(aws_creds, nested_settings_are_not_top_level_keys)
{
	put_file(".aws/config", "[default]\n"
				"s3 =\n"
				"    region = nested-1\n"
				"    addressing_style = path\n"
				"region = eu-central-1\n");
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(c.region, "eu-central-1");
	stk__aws_creds_clear(&c);

	put_file(".aws/config", "[default]\ns3 =\n  region = nested-1\n");
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(c.region, "us-east-1");
}

Test(aws_creds, later_keys_win_and_inline_comments_are_values)
{
	put_file(".aws/credentials", "[default]\naws_access_key_id = AKID1\n"
				     "aws_secret_access_key = s\n"
				     "[default]\naws_access_key_id = AKID2\n");
	put_file(".aws/config", "[default]\nregion = us-west-2 # oregon\n");
	setenv("AWS_REGION", "us-east-2", 1); /* the config file is not read */
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.access_key, "AKID2");
	stk__aws_creds_clear(&c);
	/* As in the CLI, "# oregon" is part of the value, which is no region name. */
	unsetenv("AWS_REGION");
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "us-west-2 # oregon"), "%s", err);
}

Test(aws_creds, unreadable_file_is_an_error_naming_it)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/.aws/credentials", home);
	put_file(".aws/config", "");
	cr_assert_eq(mkdir(p, 0700), 0);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), -EISDIR);
	cr_assert(strstr(err, p), "%s", err);
}

Test(aws_creds, clear_wipes_and_is_idempotent)
{
	setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
	cr_assert_eq(stk__aws_creds_load(&c, err, sizeof(err)), 0, "%s", err);
	stk__aws_creds_clear(&c);
	cr_assert_null(c.session_token);
	cr_assert_eq(c.secret_key[0], '\0');
	cr_assert_eq(c.access_key[0], '\0');
	stk__aws_creds_clear(&c);
	stk__aws_creds_clear(NULL);
}
