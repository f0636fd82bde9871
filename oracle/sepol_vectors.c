/* Differential oracle: libsepol's security_compute_av for svirt's policy queries.
 *
 * usage: sepol_vectors POLICY QUERIES OUT
 * QUERIES: SCON<TAB>TCON<TAB>CLASS[<TAB>...] per line. OUT: "ALLOWED AUDITALLOW AUDITDENY" in hex per line, or
 * "ERR context" / "ERR class" when libsepol refuses the query. Built by the tests with cc ... -lsepol.
 * The policy is loaded again every 2000 queries, so libsepol's SID table (a linear list) stays short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sepol/sepol.h>
#include <sepol/policydb/services.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s POLICY QUERIES OUT\n", argv[0]);
		return 64;
	}
	FILE *in = fopen(argv[2], "r"), *out = fopen(argv[3], "w");
	if (!in || !out) {
		fprintf(stderr, "cannot open %s or %s\n", argv[2], argv[3]);
		return 1;
	}
	char *line = NULL;
	size_t cap = 0;
	long n = 0;
	while (getline(&line, &cap, in) > 0) {
		if (n++ % 2000 == 0) {
			FILE *pf = fopen(argv[1], "r");
			if (!pf || sepol_set_policydb_from_file(pf) < 0) {
				fprintf(stderr, "cannot load %s\n", argv[1]);
				return 1;
			}
			fclose(pf);
		}
		line[strcspn(line, "\n")] = 0;
		char *scon = strtok(line, "\t"), *tcon = strtok(NULL, "\t"), *cls = strtok(NULL, "\t");
		sepol_security_id_t ssid, tsid;
		sepol_security_class_t tclass;
		struct sepol_av_decision avd;
		if (!scon || !tcon || !cls) {
			fprintf(out, "ERR query\n");
			continue;
		}
		if (sepol_context_to_sid(scon, strlen(scon) + 1, &ssid) < 0 ||
		    sepol_context_to_sid(tcon, strlen(tcon) + 1, &tsid) < 0) {
			fprintf(out, "ERR context\n");
			continue;
		}
		if (sepol_string_to_security_class(cls, &tclass) < 0 ||
		    sepol_compute_av(ssid, tsid, tclass, 0, &avd) < 0) {
			fprintf(out, "ERR class\n");
			continue;
		}
		fprintf(out, "%08x %08x %08x\n", avd.allowed, avd.auditallow, avd.auditdeny);
	}
	free(line);
	fclose(in);
	fclose(out);
	return 0;
}
