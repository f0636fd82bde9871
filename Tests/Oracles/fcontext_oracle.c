/*
 * Test oracle for svirt's file_contexts matcher: libselinux's selabel_lookup_raw.
 * Built by Tests/SVirtLinuxTests/FileContextsOracleTests.swift with cc; not part of `swift build`.
 *
 *   fcontext_oracle FILE_CONTEXTS < RECORDS > CONTEXTS
 *
 * RECORDS are NUL-terminated "OCTAL_MODE PATH" (the path may hold any byte but NUL). For each one it prints
 * the raw context, or <<none>> when selabel_lookup_raw fails, and a newline. FILE_CONTEXTS is opened with
 * SELABEL_OPT_PATH, so libselinux also reads FILE_CONTEXTS.homedirs, .local, .subs_dist and .subs; keep
 * file_contexts.bin out of that directory so that the text is what it reads.
 */
#include <errno.h>
#include <selinux/label.h>
#include <selinux/selinux.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: fcontext_oracle FILE_CONTEXTS < RECORDS\n");
		return 64;
	}
	struct selinux_opt opts[] = { { SELABEL_OPT_PATH, argv[1] } };
	struct selabel_handle *h = selabel_open(SELABEL_CTX_FILE, opts, 1);
	if (!h) {
		fprintf(stderr, "fcontext_oracle: selabel_open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	char *rec = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getdelim(&rec, &cap, '\0', stdin)) > 0) {
		char *space = memchr(rec, ' ', (size_t)n);
		if (!space) {
			fprintf(stderr, "fcontext_oracle: record without a space\n");
			return 3;
		}
		*space = '\0';
		int mode = (int)strtol(rec, NULL, 8);
		char *con = NULL;
		if (selabel_lookup_raw(h, &con, space + 1, mode) == 0) {
			fputs(con, stdout);
			freecon(con);
		} else {
			fputs("<<none>>", stdout);
		}
		putchar('\n');
	}
	free(rec);
	selabel_close(h);
	return 0;
}
