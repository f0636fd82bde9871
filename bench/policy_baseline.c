/* libsepol baseline for `svirt-bench policy`: the same work svirt's engine does, through the system libsepol.
 *
 * usage: policy_baseline POLICY QUERIES
 * QUERIES: SCON<TAB>TCON<TAB>CLASS per line. Prints, one per line:
 *   load_ms M          median time of sepol_set_policydb_from_file over 5 loads
 *   rss_kb K           resident memory added by the first load
 *   uncached_per_s R   decisions per second from context strings (sepol_context_to_sid + sepol_compute_av), on
 *                      the footing svirt's engine is measured on: warm (after an untimed pass), repeated passes,
 *                      and libsepol's SID table kept short: its lookup is a linear search, so the policy is
 *                      reloaded (untimed) every 200 queries and the table never holds more than 400 contexts
 *   uncached_tableN_per_s R   the same with a reload every N queries (N = 50, 200, 1000, 5000): the cost of
 *                      libsepol's SID table as it grows
 *   cold_per_s R       one cold pass over all the queries from a fresh table, as the figure was first taken
 *   sid_per_s R        decisions per second from SIDs already converted (sepol_compute_av alone)
 * Built by bench/build.sh, never by swift build.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sepol/sepol.h>
#include <sepol/policydb/services.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long rss_kb(void)
{
	long size = 0, resident = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &size, &resident) != 2)
			resident = 0;
		fclose(f);
	}
	return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int load(const char *path)
{
	FILE *pf = fopen(path, "r");
	if (!pf)
		return -1;
	int rc = sepol_set_policydb_from_file(pf);
	fclose(pf);
	return rc;
}

/* Decisions per second from context strings, warm, over passes of the queries until `seconds` of timed work:
 * the policy is reloaded (untimed) before every `window` queries, so libsepol's SID table (a linear list)
 * never holds more than 2 * window contexts. */
static double uncached(const char *policy, char **s, char **t, char **c, size_t n, size_t window, double seconds,
		       unsigned long *allowed)
{
	struct sepol_av_decision avd;
	sepol_security_id_t a, b;
	sepol_security_class_t k;
	double timed = 0;
	size_t done = 0;
	int warm = 0;
	while (timed < seconds) {
		for (size_t start = 0; start < n; start += window) {
			size_t end = start + window < n ? start + window : n;
			if (load(policy) < 0)
				return -1;
			double t0 = now();
			for (size_t i = start; i < end; i++) {
				if (sepol_context_to_sid(s[i], strlen(s[i]) + 1, &a) < 0 ||
				    sepol_context_to_sid(t[i], strlen(t[i]) + 1, &b) < 0 ||
				    sepol_string_to_security_class(c[i], &k) < 0)
					return -1;
				sepol_compute_av(a, b, k, 0, &avd);
				*allowed += avd.allowed & 1;
			}
			if (warm) {
				timed += now() - t0;
				done += end - start;
				if (timed >= seconds)
					break;
			}
			warm = 1;   /* the first window is untimed: the caches are warm after it */
		}
	}
	return done / timed;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s POLICY QUERIES\n", argv[0]);
		return 64;
	}
	sepol_debug(0);
	malloc_trim(0);
	long before = rss_kb();
	double t0 = now();
	if (load(argv[1]) < 0) {
		fprintf(stderr, "cannot load %s\n", argv[1]);
		return 1;
	}
	double times[5];
	times[0] = now() - t0;
	malloc_trim(0);
	long after = rss_kb();
	for (int i = 1; i < 5; i++) {
		t0 = now();
		load(argv[1]);
		times[i] = now() - t0;
	}
	qsort(times, 5, sizeof(double), cmp);
	printf("load_ms %.3f\n", times[2] * 1000);
	printf("rss_kb %ld\n", after - before);

	FILE *in = fopen(argv[2], "r");
	if (!in)
		return 1;
	size_t n = 0, cap = 1024;
	char **s = malloc(cap * sizeof(char *)), **t = malloc(cap * sizeof(char *)), **c = malloc(cap * sizeof(char *));
	char *line = NULL;
	size_t lcap = 0;
	while (getline(&line, &lcap, in) > 0) {
		line[strcspn(line, "\n")] = 0;
		char *a = strtok(line, "\t"), *b = strtok(NULL, "\t"), *k = strtok(NULL, "\t");
		if (!a || !b || !k)
			continue;
		if (n == cap) {
			cap *= 2;
			s = realloc(s, cap * sizeof(char *));
			t = realloc(t, cap * sizeof(char *));
			c = realloc(c, cap * sizeof(char *));
		}
		s[n] = strdup(a);
		t[n] = strdup(b);
		c[n] = strdup(k);
		n++;
	}
	fclose(in);
	load(argv[1]); /* a fresh SID table */
	sepol_security_id_t *ss = malloc(n * sizeof(*ss)), *ts = malloc(n * sizeof(*ts));
	sepol_security_class_t *cs = malloc(n * sizeof(*cs));
	struct sepol_av_decision avd;
	unsigned long allowed = 0;
	t0 = now();
	for (size_t i = 0; i < n; i++) {
		if (sepol_context_to_sid(s[i], strlen(s[i]) + 1, &ss[i]) < 0 ||
		    sepol_context_to_sid(t[i], strlen(t[i]) + 1, &ts[i]) < 0 ||
		    sepol_string_to_security_class(c[i], &cs[i]) < 0) {
			fprintf(stderr, "query %zu refused\n", i);
			return 1;
		}
		sepol_compute_av(ss[i], ts[i], cs[i], 0, &avd);
		allowed += avd.allowed & 1;
	}
	double el = now() - t0;
	printf("cold_per_s %.0f\n", n / el);
	size_t windows[] = {50, 200, 1000, 5000};
	for (size_t w = 0; w < sizeof windows / sizeof windows[0]; w++) {
		size_t window = windows[w] < n ? windows[w] : n;
		double rate = uncached(argv[1], s, t, c, n, window, 0.3, &allowed);
		if (rate < 0)
			return 1;
		printf("uncached_table%zu_per_s %.0f\n", windows[w], rate);
		if (windows[w] == 200)
			printf("uncached_per_s %.0f\n", rate);
	}
	for (size_t i = 0; i < n; i++) {   /* SIDs for the SID-only figure, in one table */
		if (i == 0)
			load(argv[1]);
		sepol_context_to_sid(s[i], strlen(s[i]) + 1, &ss[i]);
		sepol_context_to_sid(t[i], strlen(t[i]) + 1, &ts[i]);
	}
	size_t rounds = 0;
	t0 = now();
	do {
		for (size_t i = 0; i < n; i++) {
			sepol_compute_av(ss[i], ts[i], cs[i], 0, &avd);
			allowed += avd.allowed & 1;
		}
		rounds++;
	} while (now() - t0 < 1.0);
	el = now() - t0;
	printf("sid_per_s %.0f\n", rounds * n / el);
	fprintf(stderr, "checksum %lu\n", allowed);
	return 0;
}
