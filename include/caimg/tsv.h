/* caimg/tsv.h -- numeric tables in text files, and atomic text output.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Tables exchanged with spreadsheets and other tools (traces, response
 * matrices, schedules, statistics) are tab-separated text: one row per line,
 * '#' starts a comment line (at its start or after spaces), blank and
 * whitespace-only lines are skipped (every reader of tables skips the same
 * lines), and an optional first line of column names.
 */
#ifndef CAIMG_TSV_H
#define CAIMG_TSV_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A numeric table read from a file. */
typedef struct {
    size_t nrows, ncols;
    double *data;        /* nrows * ncols, row-major */
    char **colnames;     /* ncols names, or NULL when the file has no header */
} caimg_table;

/* Read a table.  Fields are separated by tabs (commas and spaces are
 * accepted too); "nan", "NaN", "NA" and empty fields read as NaN, so callers
 * decide how to treat missing values.  A first line with any non-numeric
 * field is taken as the header.  Every row must have the same number of
 * fields: "f.tsv: line 12 has 7 fields, expected 8".  An empty table (no data
 * rows) is an error.  Returns NULL with a message on failure. */
caimg_table *caimg_table_read(const char *path);

/* Index of the column named `name`, or -1. */
long caimg_table_column(const caimg_table *t, const char *name);

void caimg_table_free(caimg_table *t);

/* Text output written to a temporary name and renamed on commit, so that
 * a failure leaves nothing behind.  The path "-" means standard output. */
typedef struct caimg_outfile caimg_outfile;

caimg_outfile *caimg_outfile_open(const char *path);
FILE *caimg_outfile_fp(caimg_outfile *o);
/* Flush, check for write errors (disk full), close and rename; frees o. */
int caimg_outfile_commit(caimg_outfile *o);
/* Close and remove the temporary file; accepts NULL. */
void caimg_outfile_abort(caimg_outfile *o);

/* Remove every temporary file that caimg is writing (outputs not yet
 * renamed into place).  Async-signal-safe: meant for a handler of SIGINT or
 * SIGTERM that then ends the program, so an interrupted run leaves
 * nothing. */
void caimg_remove_temporaries(void);

/* Create a path for a temporary file next to `path` (caller frees). */
char *caimg_temp_name(const char *path);

#ifdef __cplusplus
}
#endif
#endif
