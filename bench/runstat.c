/* runstat.c -- run a command and report its wall time, CPU time and peak
 * resident memory (from wait4's rusage), for the benchmarks in bench/.
 *
 *   bench/runstat [-o FILE] CMD [ARGS...]
 * prints "wall_s user_s sys_s maxrss_mb exit_status" on one line (to FILE if
 * given, else stderr), after the command's own output.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    const char *out = NULL;
    int a = 1;
    if (argc > 2 && strcmp(argv[1], "-o") == 0) {
        out = argv[2];
        a = 3;
    }
    if (a >= argc) {
        fprintf(stderr, "usage: runstat [-o FILE] CMD [ARGS...]\n");
        return 2;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); return 2; }
    if (pid == 0) {
        execvp(argv[a], argv + a);
        perror(argv[a]);
        _exit(127);
    }
    int st;
    struct rusage ru;
    if (wait4(pid, &st, 0, &ru) < 0) { perror("wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double wall = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    FILE *fp = out ? fopen(out, "w") : stderr;
    if (!fp) { perror(out); return 2; }
    fprintf(fp, "%.3f %.3f %.3f %.1f %d\n", wall,
            (double)ru.ru_utime.tv_sec + 1e-6 * (double)ru.ru_utime.tv_usec,
            (double)ru.ru_stime.tv_sec + 1e-6 * (double)ru.ru_stime.tv_usec,
            (double)ru.ru_maxrss / 1024.0, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    if (out) fclose(fp);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
