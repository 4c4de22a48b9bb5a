/*
 * berth's pod holder: the first process of a CRI pod sandbox. It holds the pod's shared
 * namespaces open for the pod's containers, reaps what is reparented to it (PID 1 of a
 * shared pid namespace), and exits at SIGTERM or SIGINT. Built static by the engine's
 * build.rs (no image needs pulling for a pod), so it runs on an image that holds only it.
 * Written in C because it must be a static executable of a few hundred kilobytes with no
 * runtime: a Rust binary would need a static target this toolchain does not ship.
 */
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
    (void)sig;
    _exit(0);
}

static void reap(int sig) {
    (void)sig;
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

int main(void) {
    struct sigaction a;
    memset(&a, 0, sizeof a);
    a.sa_handler = stop;
    sigaction(SIGINT, &a, NULL);
    sigaction(SIGTERM, &a, NULL);
    a.sa_handler = reap;
    a.sa_flags = SA_NOCLDSTOP | SA_RESTART;
    sigaction(SIGCHLD, &a, NULL);
    for (;;) {
        pause();
    }
}
