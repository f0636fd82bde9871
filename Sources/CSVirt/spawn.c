#define _GNU_SOURCE
#include "csvirt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_close_range
#define __NR_close_range 436
#endif
#ifndef __NR_landlock_add_rule
#define __NR_landlock_add_rule 445
#endif
#ifndef __NR_landlock_restrict_self
#define __NR_landlock_restrict_self 446
#endif

int svirt_landlock_add_path_rule(int ruleset_fd, uint64_t allowed_access, int parent_fd) {
    svirt_landlock_path_beneath_attr attr = {.allowed_access = allowed_access, .parent_fd = parent_fd};
    return (int)syscall(__NR_landlock_add_rule, ruleset_fd, SVIRT_LANDLOCK_RULE_PATH_BENEATH, &attr, 0);
}

int svirt_landlock_add_port_rule(int ruleset_fd, uint64_t allowed_access, uint64_t port) {
    svirt_landlock_net_port_attr attr = {.allowed_access = allowed_access, .port = port};
    return (int)syscall(__NR_landlock_add_rule, ruleset_fd, SVIRT_LANDLOCK_RULE_NET_PORT, &attr, 0);
}

pid_t svirt_getsid(pid_t pid) { return getsid(pid); }

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif

int svirt_pidfd_open(pid_t pid) { return (int)syscall(__NR_pidfd_open, pid, 0); }

int svirt_pidfd_send_signal(int pidfd, int sig) { return (int)syscall(__NR_pidfd_send_signal, pidfd, sig, NULL, 0); }

int svirt_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif

int svirt_rename_noreplace(const char *from, const char *to) {
    if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0) return 0;
    if (errno != EINVAL && errno != ENOSYS) return -1;
    if (link(from, to) != 0) return -1;
    return unlink(from);
}

int svirt_open_path(const char *path) { return open(path, O_PATH | O_CLOEXEC); }

// What the child sends back when a step fails.
struct spawn_report {
    int step;
    int error;
};

// Everything the child needs, prepared by the parent so the child only makes system calls.
struct spawn_plan {
    const svirt_spawn_request *request;
    char exec_path[PATH_MAX];
    char sockcreate_path[PATH_MAX];
    struct sockaddr_un addresses[SVIRT_SPAWN_MAX_FDS];
    int report_fd;
    int gate_fd;  // -1: none; else the child waits here for the parent's go-ahead byte
    pid_t parent;
    int highest_target;
};

static void report_and_exit(int fd, int step, int error) {
    struct spawn_report r = {.step = step, .error = error};
    const char *p = (const char *)&r;
    size_t left = sizeof r;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        p += n;
        left -= (size_t)n;
    }
    _exit(127);
}

// Writes a whole string to an attribute file of procfs; returns 0 or an errno.
static int write_attribute(const char *path, const char *value) {
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    size_t len = strlen(value);
    ssize_t n;
    do {
        n = write(fd, value, len);
    } while (n < 0 && errno == EINTR);
    int e = n < 0 ? errno : ((size_t)n == len ? 0 : EIO);
    close(fd);
    return e;
}

static int join_path(char *out, size_t size, const char *root, const char *suffix) {
    size_t a = strlen(root), b = strlen(suffix);
    if (a + b + 1 > size) return -1;
    memcpy(out, root, a);
    memcpy(out + a, suffix, b + 1);
    return 0;
}

static int is_kept(int fd, const int *kept, size_t count) {
    for (size_t i = 0; i < count; i++)
        if (kept[i] == fd) return 1;
    return 0;
}

// Closes every descriptor from 3 up that is not in `kept`. Returns 0 or an errno.
static int close_others(const int *kept, size_t count) {
    // Sorted copy of the kept descriptors above 2.
    int sorted[SVIRT_SPAWN_MAX_FDS + 1];
    size_t n = 0;
    for (size_t i = 0; i < count; i++) {
        if (kept[i] < 3 || is_kept(kept[i], sorted, n)) continue;
        size_t j = n++;
        while (j > 0 && sorted[j - 1] > kept[i]) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = kept[i];
    }
    unsigned int low = 3;
    for (size_t i = 0; i <= n; i++) {
        unsigned int high = i < n ? (unsigned int)sorted[i] - 1 : ~0U;
        if (low <= high) {
            if (syscall(__NR_close_range, low, high, 0) != 0) {
                if (errno != ENOSYS) return errno;
                // Kernels before 5.9: close one by one up to the descriptor limit.
                struct rlimit rl;
                unsigned int limit = 65536;
                if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < limit)
                    limit = (unsigned int)rl.rlim_cur;
                for (unsigned int fd = low; fd <= high && fd < limit; fd++) close((int)fd);
            }
        }
        if (i < n) low = (unsigned int)sorted[i] + 1;
    }
    return 0;
}

static void child(struct spawn_plan *plan) {
    const svirt_spawn_request *rq = plan->request;
    int report = plan->report_fd;

    // 0. Wait until the parent has recorded this process. End-of-file (the parent died, or cancelled): exit
    //    before anything is done, so nothing runs that no record names. The parent-death signal covers a
    //    parent that dies while another of its children (forked by a concurrent spawn) still holds the gate's
    //    write end; it is cleared once the parent says go, since the guest must outlive svirt.
    if (plan->gate_fd >= 0) {
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0 || getppid() != plan->parent) _exit(127);
        char go = 0;
        ssize_t n;
        do {
            n = read(plan->gate_fd, &go, 1);
        } while (n < 0 && errno == EINTR);
        if (n != 1) _exit(127);
        close(plan->gate_fd);
        if (prctl(PR_SET_PDEATHSIG, 0, 0, 0, 0) != 0) _exit(127);
    }

    // 1. Signals: the parent may block or ignore some; the emulator must start with the defaults.
    sigset_t all;
    sigemptyset(&all);
    if (sigprocmask(SIG_SETMASK, &all, NULL) != 0) report_and_exit(report, SVIRT_SPAWN_STEP_SIGNALS, errno);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++) {
        if (sig == SIGKILL || sig == SIGSTOP) continue;
        sigaction(sig, &dfl, NULL);  // EINVAL for the C library's reserved signals is expected.
    }

    // 2. A new session: no controlling terminal, not killed with svirt's process group.
    if (rq->new_session && setsid() < 0) report_and_exit(report, SVIRT_SPAWN_STEP_SETSID, errno);

    // 3, 4. Per-thread SELinux attributes of this (the only) thread.
    if (rq->exec_context) {
        int e = write_attribute(plan->exec_path, rq->exec_context);
        if (e) report_and_exit(report, SVIRT_SPAWN_STEP_EXEC_CONTEXT, e);
    }
    if (rq->sockcreate_context) {
        int e = write_attribute(plan->sockcreate_path, rq->sockcreate_context);
        if (e) report_and_exit(report, SVIRT_SPAWN_STEP_SOCKCREATE_CONTEXT, e);
    }

    // 5. Listening sockets, created under the socket-create context.
    int sources[SVIRT_SPAWN_MAX_FDS];
    int targets[SVIRT_SPAWN_MAX_FDS];
    size_t count = 0;
    for (size_t i = 0; i < rq->fd_count; i++) {
        sources[count] = rq->fds[i].source;
        targets[count] = rq->fds[i].target;
        count++;
    }
    // The socket file gets mode 0600 whatever svirt's umask: bind() creates it with 0777 & ~umask, and a socket
    // others can write would let another VM's process (the same QEMU user) connect to this monitor. The
    // program keeps the umask it was given.
    for (size_t i = 0; i < rq->listener_count; i++) {
        int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (s < 0) report_and_exit(report, SVIRT_SPAWN_STEP_LISTENER, errno);
        mode_t saved = umask(0177);
        int bound = bind(s, (struct sockaddr *)&plan->addresses[i], sizeof(struct sockaddr_un));
        int e = errno;
        umask(saved);
        if (bound != 0) report_and_exit(report, SVIRT_SPAWN_STEP_LISTENER, e);
        if (listen(s, rq->listeners[i].backlog > 0 ? rq->listeners[i].backlog : 16) != 0)
            report_and_exit(report, SVIRT_SPAWN_STEP_LISTENER, errno);
        sources[count] = s;
        targets[count] = rq->listeners[i].target;
        count++;
    }

    // 6. Credentials, as libvirt's DAC driver drops them: groups, then gid, then uid.
    if (rq->change_ids) {
        if (syscall(SYS_setgroups, rq->group_count, rq->groups) != 0)
            report_and_exit(report, SVIRT_SPAWN_STEP_SETGROUPS, errno);
        if (syscall(SYS_setresgid, rq->gid, rq->gid, rq->gid) != 0)
            report_and_exit(report, SVIRT_SPAWN_STEP_SETGID, errno);
        if (syscall(SYS_setresuid, rq->uid, rq->uid, rq->uid) != 0)
            report_and_exit(report, SVIRT_SPAWN_STEP_SETUID, errno);
    }

    // 7.
    if (rq->cwd && chdir(rq->cwd) != 0) report_and_exit(report, SVIRT_SPAWN_STEP_CHDIR, errno);

    // 8. No exec from here on can gain privileges (setuid bits, file capabilities), unless the exec is an
    //    SELinux domain transition (an exec context without Landlock): under no_new_privs the kernel refuses a
    //    transition the policy does not grant nnp_transition (Debian's refpolicy refuses virtd_t -> svirt_t,
    //    EPERM at execve), and libvirt never sets it on QEMU. There the new domain bounds what QEMU gets.
    if ((!rq->exec_context || rq->landlock_ruleset_fd >= 0) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        report_and_exit(report, SVIRT_SPAWN_STEP_NO_NEW_PRIVS, errno);

    // 9.
    if (rq->landlock_ruleset_fd >= 0 &&
        syscall(__NR_landlock_restrict_self, rq->landlock_ruleset_fd, rq->landlock_flags) != 0)
        report_and_exit(report, SVIRT_SPAWN_STEP_LANDLOCK, errno);

    // 10. Move every source above all targets first, so that placing one never overwrites another's source.
    int floor = plan->highest_target + 1;
    if (report < floor) {
        int moved = fcntl(report, F_DUPFD_CLOEXEC, floor);
        if (moved < 0) report_and_exit(report, SVIRT_SPAWN_STEP_FDS, errno);
        report = moved;
    }
    if (report >= floor) floor = report + 1;
    for (size_t i = 0; i < count; i++) {
        int moved = fcntl(sources[i], F_DUPFD_CLOEXEC, floor);
        if (moved < 0) report_and_exit(report, SVIRT_SPAWN_STEP_FDS, errno);
        sources[i] = moved;
    }
    for (size_t i = 0; i < count; i++) {
        // dup2 clears FD_CLOEXEC on the target, so it survives the exec.
        if (dup2(sources[i], targets[i]) < 0) report_and_exit(report, SVIRT_SPAWN_STEP_FDS, errno);
    }

    // 11. Keep the targets and the report pipe (closed by the exec itself).
    int kept[SVIRT_SPAWN_MAX_FDS + 1];
    for (size_t i = 0; i < count; i++) kept[i] = targets[i];
    kept[count] = report;
    int e = close_others(kept, count + 1);
    if (e) report_and_exit(report, SVIRT_SPAWN_STEP_CLOSE_FDS, e);

    // 12.
    execve(rq->path, rq->argv, rq->envp);
    report_and_exit(report, SVIRT_SPAWN_STEP_EXEC, errno);
}

static int fail(svirt_spawn_result *result, int step, int error) {
    result->pid = -1;
    result->step = step;
    result->error = error;
    return -1;
}

int svirt_spawn(const svirt_spawn_request *rq, svirt_spawn_result *result) {
    result->pid = -1;
    result->step = SVIRT_SPAWN_STEP_NONE;
    result->error = 0;
    if (!rq->path || !rq->argv || !rq->envp) return fail(result, SVIRT_SPAWN_STEP_REQUEST, EINVAL);
    if (rq->fd_count + rq->listener_count > SVIRT_SPAWN_MAX_FDS)
        return fail(result, SVIRT_SPAWN_STEP_REQUEST, EMFILE);
    if (rq->change_ids && rq->group_count > 0 && !rq->groups) return fail(result, SVIRT_SPAWN_STEP_REQUEST, EINVAL);

    static struct spawn_plan zero;
    struct spawn_plan plan = zero;
    plan.request = rq;
    plan.highest_target = 2;
    const char *root = rq->procroot ? rq->procroot : "/proc";
    if (join_path(plan.exec_path, sizeof plan.exec_path, root, "/thread-self/attr/exec") != 0 ||
        join_path(plan.sockcreate_path, sizeof plan.sockcreate_path, root, "/thread-self/attr/sockcreate") != 0)
        return fail(result, SVIRT_SPAWN_STEP_REQUEST, ENAMETOOLONG);
    for (size_t i = 0; i < rq->fd_count; i++) {
        if (rq->fds[i].source < 0 || rq->fds[i].target < 0) return fail(result, SVIRT_SPAWN_STEP_REQUEST, EBADF);
        if (rq->fds[i].target > plan.highest_target) plan.highest_target = rq->fds[i].target;
    }
    for (size_t i = 0; i < rq->listener_count; i++) {
        const char *p = rq->listeners[i].path;
        if (!p || rq->listeners[i].target < 0) return fail(result, SVIRT_SPAWN_STEP_REQUEST, EINVAL);
        size_t len = strlen(p);
        if (len == 0 || len >= sizeof plan.addresses[i].sun_path)
            return fail(result, SVIRT_SPAWN_STEP_LISTENER, ENAMETOOLONG);
        plan.addresses[i].sun_family = AF_UNIX;
        memcpy(plan.addresses[i].sun_path, p, len + 1);
        if (rq->listeners[i].target > plan.highest_target) plan.highest_target = rq->listeners[i].target;
    }
    if (plan.highest_target > 65535) return fail(result, SVIRT_SPAWN_STEP_REQUEST, EBADF);

    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) return fail(result, SVIRT_SPAWN_STEP_PIPE, errno);
    plan.report_fd = pipefd[1];
    int gate[2] = {-1, -1};
    if (rq->spawned && pipe2(gate, O_CLOEXEC) != 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        return fail(result, SVIRT_SPAWN_STEP_PIPE, e);
    }
    plan.gate_fd = gate[0];
    plan.parent = getpid();

    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(pipefd[0]);
        close(pipefd[1]);
        if (gate[0] >= 0) {
            close(gate[0]);
            close(gate[1]);
        }
        return fail(result, SVIRT_SPAWN_STEP_FORK, e);
    }
    if (pid == 0) {
        close(pipefd[0]);
        if (gate[1] >= 0) close(gate[1]);
        child(&plan);
        _exit(127);  // not reached
    }
    close(pipefd[1]);
    if (rq->spawned) {
        close(gate[0]);
        int refused = rq->spawned(pid, rq->spawned_context);
        ssize_t sent = -1;
        if (refused == 0) {
            do {
                sent = write(gate[1], "g", 1);
            } while (sent < 0 && errno == EINTR);
        }
        close(gate[1]);
        if (refused != 0 || sent != 1) {
            int e = refused != 0 ? refused : errno;
            close(pipefd[0]);
            int status;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return fail(result, SVIRT_SPAWN_STEP_SPAWNED, e);
        }
    }

    struct spawn_report report;
    size_t got = 0;
    while (got < sizeof report) {
        ssize_t n = read(pipefd[0], (char *)&report + got, sizeof report - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(pipefd[0]);
    if (got == 0) {
        result->pid = pid;
        return 0;
    }
    // The child failed before exec and exits; reap it so it leaves no zombie.
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (got < sizeof report) return fail(result, SVIRT_SPAWN_STEP_FORK, EIO);
    return fail(result, report.step, report.error);
}
