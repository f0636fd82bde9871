/* Differential oracle: libsepol's answers to svirt's policy queries, one per line.
 *
 * usage: sepol_oracle av|create POLICY QUERIES OUT
 * QUERIES: SCON<TAB>TCON<TAB>CLASS[<TAB>...] per line.
 *   av:     security_compute_av; OUT gets "ALLOWED AUDITALLOW AUDITDENY" in hex per line, or "ERR query",
 *           "ERR context" or "ERR class" when the query is incomplete or libsepol refuses it.
 *   create: security_transition_sid (the label of a new object); OUT gets the new context, or "ERR".
 * sepol_transition_sid is only in the static library, so the tests link it:
 *   cc -O2 -o sepol_oracle oracle/sepol_oracle.c /usr/lib/x86_64-linux-gnu/libsepol.a
 * The policy is loaded again every 2000 queries, so libsepol's SID table (a linear list) stays short.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sepol/sepol.h>
#include <sepol/policydb/services.h>

static void answer_av(FILE *out, const char *scon, const char *tcon, const char *cls)
{
	sepol_security_id_t ssid, tsid;
	sepol_security_class_t tclass;
	struct sepol_av_decision avd;
	if (!scon || !tcon || !cls) {
		fprintf(out, "ERR query\n");
		return;
	}
	if (sepol_context_to_sid(scon, strlen(scon) + 1, &ssid) < 0 ||
	    sepol_context_to_sid(tcon, strlen(tcon) + 1, &tsid) < 0) {
		fprintf(out, "ERR context\n");
		return;
	}
	if (sepol_string_to_security_class(cls, &tclass) < 0 || sepol_compute_av(ssid, tsid, tclass, 0, &avd) < 0) {
		fprintf(out, "ERR class\n");
		return;
	}
	fprintf(out, "%08x %08x %08x\n", avd.allowed, avd.auditallow, avd.auditdeny);
}

static void answer_create(FILE *out, const char *scon, const char *tcon, const char *cls)
{
	sepol_security_id_t ssid, tsid, nsid;
	sepol_security_class_t tclass;
	sepol_security_context_t text = NULL;
	size_t len = 0;
	if (!scon || !tcon || !cls || sepol_context_to_sid(scon, strlen(scon) + 1, &ssid) < 0 ||
	    sepol_context_to_sid(tcon, strlen(tcon) + 1, &tsid) < 0 ||
	    sepol_string_to_security_class(cls, &tclass) < 0 || sepol_transition_sid(ssid, tsid, tclass, &nsid) < 0 ||
	    sepol_sid_to_context(nsid, &text, &len) < 0) {
		fprintf(out, "ERR\n");
		return;
	}
	fprintf(out, "%.*s\n", (int)len, text);
	free(text);
}

int main(int argc, char **argv)
{
	void (*answer)(FILE *, const char *, const char *, const char *) = NULL;
	if (argc == 5 && strcmp(argv[1], "av") == 0)
		answer = answer_av;
	else if (argc == 5 && strcmp(argv[1], "create") == 0)
		answer = answer_create;
	if (!answer) {
		fprintf(stderr, "usage: %s av|create POLICY QUERIES OUT\n", argv[0]);
		return 64;
	}
	FILE *in = fopen(argv[3], "r"), *out = fopen(argv[4], "w");
	if (!in || !out) {
		fprintf(stderr, "cannot open %s or %s\n", argv[3], argv[4]);
		return 1;
	}
	char *line = NULL;
	size_t cap = 0;
	long n = 0;
	while (getline(&line, &cap, in) > 0) {
		if (n++ % 2000 == 0) {
			FILE *pf = fopen(argv[2], "r");
			if (!pf || sepol_set_policydb_from_file(pf) < 0) {
				fprintf(stderr, "cannot load %s\n", argv[2]);
				return 1;
			}
			fclose(pf);
		}
		line[strcspn(line, "\n")] = 0;
		char *scon = strtok(line, "\t"), *tcon = strtok(NULL, "\t"), *cls = strtok(NULL, "\t");
		answer(out, scon, tcon, cls);
	}
	free(line);
	fclose(in);
	fclose(out);
	return 0;
}
