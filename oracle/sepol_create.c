/* Differential oracle: libsepol's security_transition_sid (the label of a new object) for svirt's queries.
 *
 * usage: sepol_create POLICY QUERIES OUT
 * QUERIES: SCON<TAB>TCON<TAB>CLASS per line. OUT: the new context per line, or "ERR" when libsepol refuses.
 * sepol_transition_sid is only in the static library: cc ... /usr/lib/x86_64-linux-gnu/libsepol.a
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
		sepol_security_id_t ssid, tsid, nsid;
		sepol_security_class_t tclass;
		sepol_security_context_t text = NULL;
		size_t len = 0;
		if (!scon || !tcon || !cls || sepol_context_to_sid(scon, strlen(scon) + 1, &ssid) < 0 ||
		    sepol_context_to_sid(tcon, strlen(tcon) + 1, &tsid) < 0 ||
		    sepol_string_to_security_class(cls, &tclass) < 0 ||
		    sepol_transition_sid(ssid, tsid, tclass, &nsid) < 0 || sepol_sid_to_context(nsid, &text, &len) < 0) {
			fprintf(out, "ERR\n");
			continue;
		}
		fprintf(out, "%.*s\n", (int)len, text);
		free(text);
	}
	free(line);
	fclose(in);
	fclose(out);
	return 0;
}
