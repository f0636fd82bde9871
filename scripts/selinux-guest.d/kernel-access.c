/* kernel-access: the enforcing guest's oracle. Asks the running kernel (selinuxfs "access", which is
 * security_compute_av) each question read from standard input and prints the kernel's answer; nothing of svirt
 * is involved. Input lines: "SCON TCON CLASS PERM..." (an optional leading "ALLOW<TAB>"/"DENY<TAB>" answer is
 * dropped). Output lines: "ALLOW|DENY|UNKNOWN|INVALID<TAB>SCON TCON CLASS PERM...", ALLOW when every permission
 * is in the kernel's allowed vector; UNKNOWN when the kernel's policy has no such class or permission, INVALID
 * when the kernel refuses a context. Built static on the host (gcc -static) so it runs in the initramfs. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *selinuxfs = "/sys/fs/selinux";

static long read_number(const char *path) {
    char buf[64];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    return strtol(buf, NULL, 10);
}

int main(void) {
    char line[8192], query[8192], path[4096];
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        char *q = line;
        char *tab = strchr(q, '\t');
        if (tab) q = tab + 1;
        if (!*q) continue;
        snprintf(query, sizeof query, "%s", q);
        char *save = NULL;
        char *scon = strtok_r(q, " \t", &save), *tcon = strtok_r(NULL, " \t", &save), *cls = strtok_r(NULL, " \t", &save);
        if (!scon || !tcon || !cls) { printf("INVALID\t%s\n", query); continue; }
        snprintf(path, sizeof path, "%s/class/%s/index", selinuxfs, cls);
        long index = read_number(path);
        if (index <= 0) { printf("UNKNOWN\t%s\n", query); continue; }
        unsigned long long wanted = 0;
        int unknown = 0;
        for (char *perm; (perm = strtok_r(NULL, " \t", &save));) {
            snprintf(path, sizeof path, "%s/class/%s/perms/%s", selinuxfs, cls, perm);
            long bit = read_number(path);
            if (bit <= 0 || bit > 32) { unknown = 1; break; }
            wanted |= 1ULL << (bit - 1);
        }
        if (unknown || !wanted) { printf("UNKNOWN\t%s\n", query); continue; }
        snprintf(path, sizeof path, "%s/access", selinuxfs);
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0) { fprintf(stderr, "kernel-access: open %s: %s\n", path, strerror(errno)); return 2; }
        char request[8192];
        int len = snprintf(request, sizeof request, "%s %s %ld", scon, tcon, index);
        if (write(fd, request, (size_t)len) != len) {
            int e = errno;
            close(fd);
            if (e == EINVAL) { printf("INVALID\t%s\n", query); continue; }
            fprintf(stderr, "kernel-access: write %s: %s\n", path, strerror(e));
            return 2;
        }
        char answer[256];
        ssize_t n = read(fd, answer, sizeof answer - 1);
        close(fd);
        if (n <= 0) { fprintf(stderr, "kernel-access: read %s: %s\n", path, strerror(errno)); return 2; }
        answer[n] = 0;
        unsigned long allowed = strtoul(answer, NULL, 16);
        printf("%s\t%s\n", (allowed & wanted) == wanted ? "ALLOW" : "DENY", query);
    }
    return 0;
}
