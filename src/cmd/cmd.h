/* cmd.h -- shared machinery of the caimg subcommands.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Every subcommand lives in src/cmd/<name>.c as `int main_<name>(int argc,
 * char **argv)` (argv[0] is the subcommand name) and is listed in the table
 * in main.c.  A subcommand:
 *   1. calls cmd_begin(), which loads --config FILE (section [name]) and
 *      installs the warning and progress handlers;
 *   2. parses its options with getopt_long, passing the shared ones
 *      (-o, -@/--threads, --fs, --seed, -q, -v, --config, -h) to
 *      cmd_common_option();
 *   3. calls the library and returns cmd_fail() on error, so that the user
 *      sees one line "caimg <name>: <message>" and the exit status is 1 for
 *      data errors and 2 for usage errors.
 * Config files hold `key = value` lines under `[section]` headers, where
 * key is a long option name; they are turned into `--key=value` arguments
 * placed before the real ones, so the command line wins.
 */
#ifndef CAIMG_CMD_H
#define CAIMG_CMD_H

#include <getopt.h>
#include <stdio.h>

/* Exit statuses. */
#define EXIT_DATA  1   /* bad or unreadable input, failed computation */
#define EXIT_USAGE 2   /* bad command line */

/* getopt codes for long-only shared options (above any char). */
enum {
    OPT_CONFIG = 1000,
    OPT_FS,
    OPT_SEED,
    OPT_FIRST_PRIVATE = 1100   /* subcommands number their own from here */
};

/* The shared options, for inclusion in each subcommand's long option table.
 * Their short forms are "o:@:qvh". */
#define CMD_COMMON_LONGOPTS                                   \
    {"output",  required_argument, NULL, 'o'},                \
    {"threads", required_argument, NULL, '@'},                \
    {"quiet",   no_argument,       NULL, 'q'},                \
    {"verbose", no_argument,       NULL, 'v'},                \
    {"help",    no_argument,       NULL, 'h'},                \
    {"config",  required_argument, NULL, OPT_CONFIG},         \
    {"fs",      required_argument, NULL, OPT_FS},             \
    {"seed",    required_argument, NULL, OPT_SEED}
#define CMD_COMMON_SHORTOPTS "o:@:qvh"

typedef struct cmd_ctx {
    const char *name;        /* subcommand name, for messages */
    const char *output;      /* -o FILE, or NULL */
    int threads;             /* -@ N; 0 = OpenMP default (all cores) */
    int quiet, verbose;
    const char *config;      /* --config FILE */
    double fs;               /* --fs HZ; 0 = not given */
    unsigned long seed;      /* --seed N */
    int seed_given;
    int want_help;           /* -h was given */
    int argc;                /* argv after config expansion */
    char **argv;
    int nconfig;             /* argv[1..nconfig-1] came from the config file */
    char *cmdline;           /* the full original command line, for provenance */
    const struct option *longopts; /* the subcommand's options, for messages */
} cmd_ctx;

/* Prepare a subcommand: expands --config into argv (section `name`) using
 * `longopts` to tell flags from options with values, and installs handlers.
 * Returns 0, or an exit status (EXIT_USAGE/EXIT_DATA) after printing. */
int cmd_begin(cmd_ctx *c, const char *name, int argc, char **argv,
              const struct option *longopts);

/* Release what cmd_begin allocated. */
void cmd_end(cmd_ctx *c);

/* Handle a shared option returned by getopt_long.  Returns 1 if handled,
 * 0 if `opt` is not a shared option, or -1 after printing a usage error
 * (the caller then returns EXIT_USAGE). */
int cmd_common_option(cmd_ctx *c, int opt, const char *arg);

/* Check an output path (NULL and "-" pass) before any work is done: it must
 * not be a directory, must not be the --config file, and its directory must
 * exist.  Returns 0, or an exit status after printing one line naming the
 * path. */
int cmd_check_output(cmd_ctx *c, const char *path);

/* Refuse an output that would destroy one of the n inputs (NULLs skipped):
 * the same file, or one an HDF5 input links to (caimg_h5_check_output).
 * Commands writing HDF5 are also checked when they add their inputs; this
 * checks before any work, and covers the other formats.  Returns 0, or an
 * exit status after printing. */
int cmd_check_inputs(cmd_ctx *c, const char *output, const char *const *inputs, size_t n);

/* Print "caimg NAME: message" for a usage error plus a hint; returns
 * EXIT_USAGE. */
int cmd_usage_error(cmd_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print the library's error message for `status` as one line and return
 * the exit status (EXIT_USAGE for CAIMG_EINVAL, else EXIT_DATA). */
int cmd_fail(cmd_ctx *c, int status);

/* Print a message on stderr unless -q ("caimg NAME: ..."). */
void cmd_note(cmd_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Strict number parsing for option values: the whole string must be a
 * number within [lo, hi].  On failure they print a usage error naming the
 * option and return -1. */
int cmd_parse_long(cmd_ctx *c, const char *opt, const char *s, long lo,
                   long hi, long *out);
int cmd_parse_double(cmd_ctx *c, const char *opt, const char *s, double lo,
                     double hi, double *out);

/* Parse a frame range "A-B" (1-based, inclusive; "A-" means to the end)
 * into the 0-based half-open range [*a, *b), with *b = 0 for "to the
 * end".  Returns 0, or -1 after printing a usage error. */
int cmd_parse_frames(cmd_ctx *c, const char *opt, const char *s, size_t *a, size_t *b);

/* Seconds on the monotonic clock, for the timings a command prints. */
double cmd_seconds(void);

/* Parse "a,b,c" into up to `max` doubles; returns the count or -1. */
int cmd_parse_double_list(cmd_ctx *c, const char *opt, const char *s,
                          double *out, int max);

/* The getopt error path, for getopt_long's '?': print "caimg NAME:
 * unrecognized option '--x'" (or a missing or unwanted argument, or an
 * ambiguous abbreviation) and the usage hint.  Returns EXIT_USAGE. */
int cmd_bad_option(cmd_ctx *c);

/* Subcommands, one per src/cmd/<name>.c, listed in main.c. */
int main_import(int argc, char **argv);
int main_info(int argc, char **argv);
int main_export(int argc, char **argv);
int main_roi(int argc, char **argv);
int main_simulate(int argc, char **argv);
int main_eval(int argc, char **argv);
int main_report(int argc, char **argv);
int main_mc(int argc, char **argv);
int main_dff(int argc, char **argv);
int main_deconv(int argc, char **argv);
int main_fit(int argc, char **argv);
int main_predict(int argc, char **argv);
int main_attack(int argc, char **argv);
int main_robustness(int argc, char **argv);

#endif
