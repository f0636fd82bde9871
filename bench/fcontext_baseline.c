/*
 * libselinux baseline for `svirt-bench fcontext`. Built by bench/build.sh, never by `swift build`.
 *
 * Times are CPU seconds of the process (CLOCK_PROCESS_CPUTIME_ID), so a busy machine does not skew them.
 *
 *   fcontext_baseline open FILE_CONTEXTS N
 *       Opens FILE_CONTEXTS with selabel_open N times; prints "open_ms <milliseconds per open>".
 *       Give a file_contexts in a directory without file_contexts.bin, so the text is what gets read.
 *   fcontext_baseline lookup FILE_CONTEXTS < RECORDS
 *       RECORDS are NUL-terminated "OCTAL_MODE PATH". Opens once, then times selabel_lookup_raw over all of
 *       them; prints "lookups <n>" and "lookup_s <seconds>", and writes one context (or <<none>>) per line to
 *       the file named by $FCONTEXT_BASELINE_OUT when it is set.
 */
#include <errno.h>
#include <selinux/label.h>
#include <selinux/selinux.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct selabel_handle *open_handle(const char *path)
{
	struct selinux_opt opts[] = { { SELABEL_OPT_PATH, path } };
	struct selabel_handle *h = selabel_open(SELABEL_CTX_FILE, opts, 1);
	if (!h) {
		fprintf(stderr, "fcontext_baseline: selabel_open %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return h;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "open") == 0) {
		int n = atoi(argv[3]);
		if (n < 1)
			n = 1;
		double t0 = cpu_seconds();
		for (int i = 0; i < n; i++)
			selabel_close(open_handle(argv[2]));
		printf("open_ms %.6f\n", (cpu_seconds() - t0) * 1e3 / n);
		return 0;
	}
	if (argc >= 3 && strcmp(argv[1], "lookup") == 0) {
		size_t cap = 1 << 20, len = 0, count = 0;
		char *buf = malloc(cap);
		size_t got;
		while (buf && (got = fread(buf + len, 1, cap - len, stdin)) > 0) {
			len += got;
			if (len == cap) {
				cap *= 2;
				buf = realloc(buf, cap);
			}
		}
		if (!buf)
			return 3;
		/* Split the records first, so that only lookups are timed. */
		char **paths = malloc(sizeof(char *) * (len / 2 + 1));
		int *modes = malloc(sizeof(int) * (len / 2 + 1));
		for (size_t s = 0; s < len;) {
			char *rec = buf + s;
			size_t rlen = strnlen(rec, len - s);
			char *sp = memchr(rec, ' ', rlen);
			if (!sp)
				return 4;
			*sp = 0;
			modes[count] = (int)strtol(rec, NULL, 8);
			paths[count++] = sp + 1;
			s += rlen + 1;
		}
		struct selabel_handle *h = open_handle(argv[2]);
		char **results = calloc(count + 1, sizeof(char *));
		double t0 = cpu_seconds();
		for (size_t i = 0; i < count; i++) {
			char *con = NULL;
			if (selabel_lookup_raw(h, &con, paths[i], modes[i]) == 0)
				results[i] = con;
		}
		double t = cpu_seconds() - t0;
		printf("lookups %zu\nlookup_s %.6f\n", count, t);
		const char *out = getenv("FCONTEXT_BASELINE_OUT");
		if (out) {
			FILE *f = fopen(out, "w");
			if (!f)
				return 5;
			for (size_t i = 0; i < count; i++)
				fprintf(f, "%s\n", results[i] ? results[i] : "<<none>>");
			fclose(f);
		}
		return 0;
	}
	fprintf(stderr, "usage: fcontext_baseline open FILE_CONTEXTS N | lookup FILE_CONTEXTS < RECORDS\n");
	return 64;
}
