/* cmdutil.c -- option parsing, config files, messages and progress for the
 * caimg subcommands.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/caimg.h"
#include "cmd.h"

/* ---- messages ---------------------------------------------------------- */

int cmd_usage_error(cmd_ctx *c, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "caimg %s: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'caimg %s -h' for more information.\n", c->name);
    return EXIT_USAGE;
}

/* The long option `arg` ("--name" or "--name=value") names, as getopt_long
 * matches it: exactly, or as the unique prefix of one.  Sets *nmatch to the
 * number of options it is a prefix of, so an ambiguous abbreviation can be
 * told from an unknown name. */
static const struct option *match_long(const struct option *lo, const char *arg,
                                        size_t *nmatch)
{
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    const struct option *found = NULL;
    *nmatch = 0;
    for (; lo && lo->name; lo++) {
        if (strncmp(lo->name, name, len) != 0) continue;
        if (strlen(lo->name) == len) {   /* an exact match wins */
            *nmatch = 1;
            return lo;
        }
        found = lo;
        ++*nmatch;
    }
    return *nmatch == 1 ? found : NULL;
}

int cmd_bad_option(cmd_ctx *c)
{
    /* cmd_begin turned getopt's own messages off (opterr = 0), because they
     * start with the bare subcommand name ("roi: unrecognized option"), and
     * every other message starts with "caimg roi:".  Here the same messages
     * are made again from what getopt_long leaves behind: optopt is 0 for
     * a long option it could not match, the option's value when its
     * argument was missing or not allowed, and the character for a short
     * option; argv[optind - 1] is the long option it was looking at. */
    const char *arg = optind > 0 && optind <= c->argc ? c->argv[optind - 1] : "";
    int is_long = strncmp(arg, "--", 2) == 0 && arg[2] != '\0';
    size_t nmatch = 0;
    const struct option *o = is_long ? match_long(c->longopts, arg, &nmatch) : NULL;
    if (optopt == 0 && is_long) {
        if (nmatch > 1) {
            const char *eq = strchr(arg, '=');
            int len = eq ? (int)(eq - arg) : (int)strlen(arg);
            fprintf(stderr, "caimg %s: option '%.*s' is ambiguous; possibilities:", c->name,
                    len, arg);
            for (const struct option *l = c->longopts; l && l->name; l++)
                if (strncmp(l->name, arg + 2, (size_t)len - 2) == 0)
                    fprintf(stderr, " '--%s'", l->name);
            fputc('\n', stderr);
        } else {
            fprintf(stderr, "caimg %s: unrecognized option '%s'\n", c->name, arg);
        }
    } else if (o && o->val == optopt) {
        /* A long option matched, but its argument did not fit: given to a
         * flag, or missing at the end of the command line. */
        if (o->has_arg == no_argument)
            fprintf(stderr, "caimg %s: option '--%s' doesn't allow an argument\n", c->name,
                    o->name);
        else
            fprintf(stderr, "caimg %s: option '--%s' requires an argument\n", c->name,
                    o->name);
    } else {
        /* A short option: unknown, or one that takes a value and had none. */
        int takes_arg = 0;
        for (const struct option *l = c->longopts; l && l->name; l++)
            if (l->val == optopt && l->has_arg == required_argument) takes_arg = 1;
        if (takes_arg)
            fprintf(stderr, "caimg %s: option requires an argument -- '%c'\n", c->name, optopt);
        else if (optopt > 0 && optopt < 256 && isprint(optopt))
            fprintf(stderr, "caimg %s: invalid option -- '%c'\n", c->name, optopt);
        else
            fprintf(stderr, "caimg %s: invalid option '%s'\n", c->name, arg);
    }
    fprintf(stderr, "Try 'caimg %s -h' for more information.\n", c->name);
    return EXIT_USAGE;
}

int cmd_fail(cmd_ctx *c, int status)
{
    /* The message alone: the name of the library function that failed is
     * for debuggers (caimg_errfunc()), not for the user, whose message
     * already names the file and the problem. */
    const char *msg = caimg_errmsg();
    fprintf(stderr, "caimg %s: %s\n", c->name, *msg ? msg : caimg_strerror(status));
    return status == CAIMG_EINVAL ? EXIT_USAGE : EXIT_DATA;
}

void cmd_note(cmd_ctx *c, const char *fmt, ...)
{
    va_list ap;
    if (c->quiet) return;
    fprintf(stderr, "caimg %s: ", c->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ---- outputs ------------------------------------------------------------- */

int cmd_check_output(cmd_ctx *c, const char *path)
{
    struct stat st, sc;
    if (!path || !strcmp(path, "-")) return 0;
    if (stat(path, &st) == 0) {
        /* Otherwise the whole job would run before renaming the temporary
         * over a directory failed. */
        if (S_ISDIR(st.st_mode)) {
            fprintf(stderr, "caimg %s: %s: is a directory\n", c->name, path);
            return EXIT_DATA;
        }
        /* Same file, however named (./, symbolic or hard links). */
        if (c->config && stat(c->config, &sc) == 0 && sc.st_dev == st.st_dev
            && sc.st_ino == st.st_ino) {
            fprintf(stderr, "caimg %s: %s: output would overwrite the config file\n",
                    c->name, path);
            return EXIT_USAGE;
        }
        return 0;
    }
    /* A new file: its directory must exist. */
    const char *slash = strrchr(path, '/');
    if (slash && slash != path) {
        size_t n = (size_t)(slash - path);
        char *dir = malloc(n + 1);
        if (!dir) return EXIT_DATA;
        memcpy(dir, path, n);
        dir[n] = '\0';
        int e = stat(dir, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
        free(dir);
        if (e) {
            fprintf(stderr, "caimg %s: %s: cannot create: %s\n", c->name, path, strerror(e));
            return EXIT_DATA;
        }
    }
    return 0;
}

int cmd_check_inputs(cmd_ctx *c, const char *output, const char *const *inputs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = inputs[i] ? caimg_h5_check_output(output, inputs[i]) : 0;
        if (rc) return cmd_fail(c, rc);
    }
    return 0;
}

/* ---- number parsing ---------------------------------------------------- */

int cmd_parse_long(cmd_ctx *c, const char *opt, const char *s, long lo,
                   long hi, long *out)
{
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno || v < lo || v > hi) {
        cmd_usage_error(c, "%s: '%s' is not an integer in [%ld, %ld]", opt,
                        s ? s : "", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cmd_parse_double(cmd_ctx *c, const char *opt, const char *s, double lo,
                     double hi, double *out)
{
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v) || v < lo || v > hi) {
        cmd_usage_error(c, "%s: '%s' is not a number in [%g, %g]", opt,
                        s ? s : "", lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

double cmd_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int cmd_parse_double_list(cmd_ctx *c, const char *opt, const char *s,
                          double *out, int max)
{
    int n = 0;
    const char *p = s;
    while (p && *p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (end == p || errno || !isfinite(v) || n >= max || (*end && *end != ',')) {
            cmd_usage_error(c, "%s: '%s' is not a comma-separated list of at most %d numbers",
                            opt, s, max);
            return -1;
        }
        out[n++] = v;
        p = *end ? end + 1 : end;
    }
    if (n == 0) {
        cmd_usage_error(c, "%s: empty list", opt);
        return -1;
    }
    return n;
}

int cmd_parse_frames(cmd_ctx *c, const char *opt, const char *s, size_t *a, size_t *b)
{
    char *end;
    errno = 0;
    unsigned long x = strtoul(s, &end, 10), y = 0;
    if (end == s || errno || x == 0 || *end != '-' || s[0] == '-') goto bad;
    if (end[1] != '\0') {
        const char *p = end + 1;
        y = strtoul(p, &end, 10);
        if (end == p || *end || errno || y < x) goto bad;
    }
    *a = x - 1;
    *b = y;
    return 0;
bad:
    cmd_usage_error(c, "%s: '%s' is not a range A-B of 1-based frames", opt, s);
    return -1;
}

/* ---- shared options ---------------------------------------------------- */

int cmd_common_option(cmd_ctx *c, int opt, const char *arg)
{
    long v;
    switch (opt) {
    case 'o': c->output = arg; return 1;
    case '@':
        if (cmd_parse_long(c, "--threads", arg, 1, 1024, &v)) return -1;
        c->threads = (int)v;
#ifdef _OPENMP
        omp_set_num_threads(c->threads);
#endif
        return 1;
    case 'q': c->quiet = 1; return 1;
    case 'v': c->verbose++; return 1;
    case 'h': c->want_help = 1; return 1;
    case OPT_CONFIG: return 1;      /* already expanded by cmd_begin */
    case OPT_FS:
        if (cmd_parse_double(c, "--fs", arg, 1e-6, 1e6, &c->fs)) return -1;
        return 1;
    case OPT_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(arg, &end, 10);
        if (!*arg || *end || errno || arg[0] == '-') {
            cmd_usage_error(c, "--seed: '%s' is not a non-negative integer", arg);
            return -1;
        }
        c->seed = (unsigned long)s;
        c->seed_given = 1;
        return 1;
    }
    default: return 0;
    }
}

/* ---- config files ------------------------------------------------------ */

static char *trim(char *s)
{
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

static const struct option *find_longopt(const struct option *lo, const char *key)
{
    for (; lo && lo->name; lo++)
        if (strcmp(lo->name, key) == 0) return lo;
    return NULL;
}

/* Append a string to a growing argv. */
static int push_arg(char ***v, int *n, int *cap, char *s)
{
    if (*n + 1 >= *cap) {
        int nc = *cap ? *cap * 2 : 32;
        char **nv = realloc(*v, (size_t)nc * sizeof *nv);
        if (!nv) return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
    return 0;
}

/* Where a comment starts in s (a line, or the part of one after its
 * key), or NULL.  '#' starts a comment at the start of the line or after
 * whitespace: "fs = 30  # Hz" is commented, but a value that merely
 * contains '#', such as /data/run#2/rois.zip, is kept whole.  `line` is
 * the start of the whole line, to see what precedes s[0]. */
static char *comment_start(char *s, const char *line)
{
    for (char *p = s; *p; p++)
        if (*p == '#' && (p == line || isspace((unsigned char)p[-1]))) return p;
    return NULL;
}

/* The value after "key =", in place: unquoted, it ends at a comment and
 * loses surrounding whitespace; in double quotes, as caimg_h5_param()
 * writes a value that would not survive that (one that starts with '#'
 * or '"', has whitespace before a '#' or at either end), it is the text
 * between them with \" and \\ read as " and \.  NULL if a quoted value
 * is unterminated or followed by more than a comment. */
static char *config_value(char *s, const char *line)
{
    while (isspace((unsigned char)*s)) s++;
    if (*s != '"') {
        char *hash = comment_start(s, line);
        if (hash) *hash = '\0';
        return trim(s);
    }
    char *val = s + 1, *q = val, *p = val;
    for (; *p && *p != '"'; p++) {
        if (*p == '\\' && (p[1] == '"' || p[1] == '\\')) p++;
        *q++ = *p;
    }
    if (*p != '"') return NULL;
    for (p++; isspace((unsigned char)*p); p++) {}
    if (*p && *p != '#') return NULL;
    *q = '\0';
    return val;
}

/* Read section [name] of the config file into --key=value arguments.  Keys
 * in other sections are ignored (one file serves a whole pipeline); unknown
 * keys in our section are errors, so a typo does not pass silently.  A
 * [caimg] section applies to every stage but only for keys it knows. */
static int load_config(cmd_ctx *c, const char *path, const struct option *lo,
                       char ***v, int *n, int *cap)
{
    FILE *fp = fopen(path, "r");
    if (!fp) {
        fprintf(stderr, "caimg %s: %s: cannot open config file: %s\n", c->name,
                path, strerror(errno));
        return EXIT_DATA;
    }
    /* getline: a recorded value may be a path of any length, which a fixed
     * buffer would split into a second, bogus line. */
    char *line = NULL;
    size_t linecap = 0;
    ssize_t len;
    int lineno = 0, mine = 0, global = 0;
    while ((len = getline(&line, &linecap, fp)) >= 0) {
        lineno++;
        char *s = line;
        while (isspace((unsigned char)*s)) s++;
        /* A comment before any '=' ends the line, so "# key = value"
         * (a derived value in a provenance record) is a comment. */
        char *eq = strchr(s, '='), *hash = comment_start(s, line);
        if (hash && (!eq || hash < eq)) {
            *hash = '\0';
            eq = NULL;
        }
        s = trim(s);
        if (!*s) continue;
        if (*s == '[') {
            char *e = strchr(s, ']');
            if (!e) goto syntax;
            *e = '\0';
            char *sec = trim(s + 1);
            mine = strcmp(sec, c->name) == 0;
            global = strcmp(sec, "caimg") == 0;
            continue;
        }
        if (!mine && !global) continue;
        if (!eq) goto syntax;
        *eq = '\0';
        char *key = trim(s), *val = config_value(eq + 1, line);
        if (!val) {
            fprintf(stderr, "caimg %s: %s:%d: a quoted value must end with '\"' and be "
                    "followed by nothing but a comment\n", c->name, path, lineno);
            goto fail;
        }
        const struct option *o = find_longopt(lo, key);
        if (!o || strcmp(key, "config") == 0 || strcmp(key, "help") == 0
            || strcmp(key, "output") == 0) {
            if (global) continue;
            fprintf(stderr, "caimg %s: %s:%d: unknown option '%s' for caimg %s\n",
                    c->name, path, lineno, key, c->name);
            goto fail;
        }
        char *arg;
        if (o->has_arg == no_argument) {
            if (!strcmp(val, "") || !strcmp(val, "1") || !strcmp(val, "yes") || !strcmp(val, "true"))
                arg = NULL;
            else if (!strcmp(val, "0") || !strcmp(val, "no") || !strcmp(val, "false"))
                continue;
            else {
                fprintf(stderr, "caimg %s: %s:%d: '%s' is a flag; use yes or no\n",
                        c->name, path, lineno, key);
                goto fail;
            }
            size_t alen = strlen(key) + 3;
            char *a = malloc(alen);
            if (!a) goto nomem;
            snprintf(a, alen, "--%s", key);
            if (push_arg(v, n, cap, a)) { free(a); goto nomem; }
        } else {
            arg = val;
            size_t alen = strlen(key) + strlen(arg) + 4;
            char *a = malloc(alen);
            if (!a) goto nomem;
            snprintf(a, alen, "--%s=%s", key, arg);
            if (push_arg(v, n, cap, a)) { free(a); goto nomem; }
        }
    }
    free(line);
    fclose(fp);
    return 0;
syntax:
    fprintf(stderr, "caimg %s: %s:%d: expected '[section]' or 'key = value'\n",
            c->name, path, lineno);
fail:
    free(line);
    fclose(fp);
    return EXIT_USAGE;
nomem:
    fprintf(stderr, "caimg %s: out of memory reading %s\n", c->name, path);
    free(line);
    fclose(fp);
    return EXIT_DATA;
}

/* ---- handlers ---------------------------------------------------------- */

static void warn_handler(const char *msg, void *ctx)
{
    cmd_ctx *c = ctx;
    if (c->quiet) return;
    fprintf(stderr, "caimg %s: warning: %s\n", c->name, msg);
}

struct progress_state {
    struct timespec start;
    struct timespec last;
    char task[64];
    int active;
};
static struct progress_state prog;

static double since(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) + 1e-9 * (double)(b->tv_nsec - a->tv_nsec);
}

/* Progress on stderr when it is a terminal: rate and ETA, redrawn at most
 * five times a second; a final newline when the task completes. */
static int progress_handler(const char *task, double done, double total, void *ctx)
{
    cmd_ctx *c = ctx;
    struct timespec now;
    if (c->quiet || !isatty(STDERR_FILENO)) return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!prog.active || strncmp(prog.task, task, sizeof prog.task - 1) != 0) {
        if (prog.active) fputc('\n', stderr);
        prog.active = 1;
        prog.start = now;
        prog.last.tv_sec = 0;
        snprintf(prog.task, sizeof prog.task, "%s", task);
    }
    int finished = total > 0 && done >= total;
    if (!finished && since(&prog.last, &now) < 0.2) return 0;
    prog.last = now;
    double el = since(&prog.start, &now);
    double rate = el > 0 ? done / el : 0;
    fprintf(stderr, "\rcaimg %s: %s %.0f/%.0f", c->name, task, done, total);
    if (rate > 0) {
        double eta = (total - done) / rate;
        fprintf(stderr, " (%.1f/s, %s %d:%02d)   ", rate, finished ? "took" : "ETA",
                (int)((finished ? el : eta) / 60), (int)fmod(finished ? el : eta, 60));
    }
    if (finished) {
        fputc('\n', stderr);
        prog.active = 0;
    }
    return 0;
}

/* ---- signals ----------------------------------------------------------- */

/* Outputs are written under temporary names, so a failure leaves nothing;
 * a run interrupted by ^C, kill or a closed terminal must not either.  The
 * handler removes the temporaries and dies of the same signal, so the shell
 * still sees what killed the program.  Only async-signal-safe calls. */
static void on_signal(int sig)
{
    caimg_remove_temporaries();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void catch_signals(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof sigs / sizeof *sigs; i++) {
        struct sigaction sa, old;
        /* A signal ignored at start stays ignored (nohup, or SIGINT for
         * a background job of a non-interactive shell). */
        if (sigaction(sigs[i], NULL, &old) != 0 || old.sa_handler == SIG_IGN) continue;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_signal;
        sigfillset(&sa.sa_mask);
        sigaction(sigs[i], &sa, NULL);
    }
}

/* ---- begin / end ------------------------------------------------------- */

int cmd_begin(cmd_ctx *c, const char *name, int argc, char **argv,
              const struct option *longopts)
{
    memset(c, 0, sizeof *c);
    c->name = name;
    caimg_init();
    catch_signals();

    /* The full command line, quoted where needed, for provenance. */
    size_t len = 16;
    for (int i = 0; i < argc; i++) len += strlen(argv[i]) * 2 + 3;
    c->cmdline = malloc(len);
    if (!c->cmdline) return EXIT_DATA;
    char *p = c->cmdline;
    p += sprintf(p, "caimg");
    for (int i = 0; i < argc; i++) {
        int q = argv[i][0] == '\0' || strpbrk(argv[i], " \t\"'$\\*?;&|<>()") != NULL;
        *p++ = ' ';
        if (q) *p++ = '\'';
        for (const char *s = argv[i]; *s; s++) {
            if (q && *s == '\'') { memcpy(p, "'\\''", 4); p += 4; continue; }
            *p++ = *s;
        }
        if (q) *p++ = '\'';
        *p = '\0';
    }

    /* Expand --config FILE / --config=FILE: config arguments go first so
     * that the command line overrides them. */
    const char *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) break;
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0) config = argv[i] + 9;
    }
    char **v = NULL;
    int n = 0, cap = 0;
    if (push_arg(&v, &n, &cap, argv[0])) return EXIT_DATA;
    if (config) {
        int rc = load_config(c, config, longopts, &v, &n, &cap);
        if (rc) {
            for (int i = 1; i < n; i++) free(v[i]);
            free(v);
            free(c->cmdline);
            c->cmdline = NULL;
            return rc;
        }
    }
    int nconf = n;
    for (int i = 1; i < argc; i++)
        if (push_arg(&v, &n, &cap, argv[i])) return EXIT_DATA;
    c->argc = n;
    c->argv = v;
    c->config = config;
    c->longopts = longopts;
    /* Remember where config arguments end so cmd_end frees only them. */
    c->seed = 0;
    c->threads = 0;
    c->nconfig = nconf;

    caimg_set_warn_handler(warn_handler, c);
    caimg_set_progress_handler(progress_handler, c);
    optind = 1;
    /* getopt's messages name the subcommand without "caimg"; cmd_bad_option()
     * prints them in the form every other message has. */
    opterr = 0;
    return 0;
}

void cmd_end(cmd_ctx *c)
{
    if (c->argv) {
        for (int i = 1; i < c->nconfig; i++) free(c->argv[i]);
        free(c->argv);
    }
    free(c->cmdline);
    caimg_set_warn_handler(NULL, NULL);
    caimg_set_progress_handler(NULL, NULL);
    c->argv = NULL;
    c->cmdline = NULL;
}
