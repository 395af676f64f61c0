/* check_h5io.c -- caimg HDF5 files: round trips, atomic commit, provenance
 * chains and links, and the errors users see.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>
#include <sys/stat.h>

#include "caimg/caimg.h"
#include "caimg/resp.h"
#include "traceio.h"
#include "testutil.h"

static caimg_h5 *make_movie_file(const char *path, const char *stage, size_t T)
{
    caimg_h5 *f = caimg_h5_create(path, stage, "caimg test");
    ck_assert_ptr_nonnull(f);
    size_t inner[2] = {4, 5};
    caimg_h5_stream *s = caimg_h5_stream_create(f, "/movie", CAIMG_DT_U16, 3, inner, 0, T);
    ck_assert_ptr_nonnull(s);
    uint16_t frame[20];
    for (size_t t = 0; t < T; t++) {
        for (int i = 0; i < 20; i++) frame[i] = (uint16_t)(t * 100 + (size_t)i);
        ck_assert_int_eq(caimg_h5_stream_write(s, frame, CAIMG_DT_U16, 1, NULL), 0);
    }
    ck_assert_uint_eq(caimg_h5_stream_rows(s), T);
    ck_assert_int_eq(caimg_h5_stream_close(s), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/movie", "fs", 30.0), 0);
    return f;
}

START_TEST(write_read_round_trip)
{
    char *d = tu_tmpdir();
    const char *p = tu_path(d, "a.h5");
    caimg_h5 *f = caimg_h5_create(p, "test", "caimg test");
    ck_assert_ptr_nonnull(f);
    /* Nothing at the final name until commit. */
    ck_assert_int_ne(access(p, F_OK), 0);
    double v[6] = {1, 2.5, -3, 4, 5, NAN};
    size_t dims[2] = {2, 3};
    ck_assert_int_eq(caimg_h5_write(f, "/g/sub/x", CAIMG_DT_F64, 2, dims, v), 0);
    int32_t iv[3] = {-1, 0, 7};
    size_t d1 = 3;
    ck_assert_int_eq(caimg_h5_write(f, "/g/i", CAIMG_DT_I32, 1, &d1, iv), 0);
    int64_t lv[3] = {0, 5, (int64_t)1 << 40};
    ck_assert_int_eq(caimg_h5_write(f, "/g/start", CAIMG_DT_I64, 1, &d1, lv), 0);
    ck_assert_int_eq(caimg_h5_set_attr_string(f, "/g", "unit", "dF/F"), 0);
    ck_assert_int_eq(caimg_h5_set_attr_long(f, "/g", "n", 42), 0);
    ck_assert_int_eq(caimg_h5_param(f, "max-shift", "%d", 40), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    ck_assert_int_eq(access(p, F_OK), 0);
    ck_assert_int_eq(tu_count(d, ".tmp."), 0);

    f = caimg_h5_open(p);
    ck_assert_ptr_nonnull(f);
    float *x;
    int rank;
    size_t got[CAIMG_H5_MAXRANK];
    ck_assert_int_eq(caimg_h5_read(f, "/g/sub/x", CAIMG_DT_F32, 2, &rank, got, (void **)&x), 0);
    ck_assert_int_eq(rank, 2);
    ck_assert_uint_eq(got[0], 2);
    ck_assert_uint_eq(got[1], 3);
    ck_assert_float_eq(x[1], 2.5f);
    ck_assert(isnan(x[5]));
    free(x);
    ck_assert_int_eq(caimg_h5_dtype(f, "/g/i"), CAIMG_DT_I32);
    ck_assert_int_eq(caimg_h5_dtype(f, "/g/start"), CAIMG_DT_I64);
    int64_t *lr;
    ck_assert_int_eq(caimg_h5_read(f, "/g/start", CAIMG_DT_I64, 1, NULL, NULL, (void **)&lr), 0);
    ck_assert(lr[2] == (int64_t)1 << 40);
    free(lr);
    char *s;
    ck_assert_int_eq(caimg_h5_get_attr_string(f, "/g", "unit", &s), 0);
    ck_assert_str_eq(s, "dF/F");
    free(s);
    long n;
    ck_assert_int_eq(caimg_h5_get_attr_long(f, "/g", "n", &n), 0);
    ck_assert_int_eq(n, 42);
    ck_assert_int_eq(caimg_h5_get_attr_string(f, "/provenance/00_test", "parameters", &s), 0);
    ck_assert_str_eq(s, "max-shift = 40\n");
    free(s);
    ck_assert_int_eq(caimg_h5_get_attr_double(f, "/g", "missing", &(double){0}), CAIMG_ENOENT);
    /* Wrong rank is reported the way users see it. */
    ck_assert_int_eq(caimg_h5_read(f, "/g/i", CAIMG_DT_F32, 3, NULL, NULL, (void **)&x),
                     CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "/g/i has rank 1, expected 3"));
    ck_assert_int_eq(caimg_h5_read(f, "/nope", CAIMG_DT_F32, 0, NULL, NULL, (void **)&x),
                     CAIMG_ENOENT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "no dataset /nope"));
    caimg_h5_close(f);
    tu_rmdir(d);
}
END_TEST

START_TEST(abandon_leaves_nothing)
{
    char *d = tu_tmpdir();
    caimg_h5 *f = make_movie_file(tu_path(d, "out.h5"), "import", 3);
    caimg_h5_close(f);
    ck_assert_int_eq(tu_count(d, "out.h5"), 0);
    tu_rmdir(d);
}
END_TEST

START_TEST(stream_rounds_and_clamps)
{
    char *d = tu_tmpdir();
    const char *p = tu_path(d, "s.h5");
    caimg_h5 *f = caimg_h5_create(p, "t", "");
    size_t inner[1] = {4};
    caimg_h5_stream *s = caimg_h5_stream_create(f, "/x", CAIMG_DT_U16, 2, inner, 4, 0);
    float row[8] = {1.4f, 1.6f, -5, 70000, 2, 3, 4, NAN};
    size_t clamped = 0;
    ck_assert_int_eq(caimg_h5_stream_write(s, row, CAIMG_DT_F32, 2, &clamped), 0);
    ck_assert_uint_eq(clamped, 3);
    ck_assert_int_eq(caimg_h5_stream_close(s), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    f = caimg_h5_open(p);
    uint16_t buf[4];
    ck_assert_int_eq(caimg_h5_read_rows(f, "/x", CAIMG_DT_U16, 0, 1, buf), 0);
    ck_assert_uint_eq(buf[0], 1);
    ck_assert_uint_eq(buf[1], 2);
    ck_assert_uint_eq(buf[2], 0);
    ck_assert_uint_eq(buf[3], 65535);
    ck_assert_int_eq(caimg_h5_read_rows(f, "/x", CAIMG_DT_U16, 1, 2, buf), CAIMG_EINVAL);
    caimg_h5_close(f);
    tu_rmdir(d);
}
END_TEST

/* Frames of 64 KB or more are chunks of their own: read and written a
 * chunk at a time, and mapped in place, with the same contents as through
 * HDF5's ordinary path (compressed and converted data take that path). */
START_TEST(whole_frame_chunks_direct_and_mapped)
{
    enum { Y = 128, X = 256, T = 5, NP = Y * X };
    char *d = tu_tmpdir();
    const char *p = tu_path(d, "m.h5");
    caimg_h5 *f = caimg_h5_create(p, "t", "");
    ck_assert_ptr_nonnull(f);
    size_t inner[2] = {Y, X};
    caimg_h5_stream *s = caimg_h5_stream_create(f, "/movie", CAIMG_DT_U16, 3, inner, 0, T);
    caimg_h5_stream *z = caimg_h5_stream_create(f, "/z", CAIMG_DT_U16, 3, inner, 1, T);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(z);
    uint16_t *mv = malloc(sizeof(uint16_t) * T * NP), *buf = malloc(sizeof(uint16_t) * T * NP);
    float *fl = malloc(sizeof(float) * 2 * NP);
    for (size_t i = 0; i < (size_t)T * NP; i++) mv[i] = (uint16_t)(i * 2654435761u >> 7);
    /* Three frames as uint16, two through the float converter. */
    ck_assert_int_eq(caimg_h5_stream_write(s, mv, CAIMG_DT_U16, 3, NULL), 0);
    for (size_t i = 0; i < 2 * NP; i++) fl[i] = mv[3 * NP + i];
    ck_assert_int_eq(caimg_h5_stream_write(s, fl, CAIMG_DT_F32, 2, NULL), 0);
    ck_assert_int_eq(caimg_h5_stream_write(z, mv, CAIMG_DT_U16, T, NULL), 0);
    ck_assert_int_eq(caimg_h5_stream_close(s), 0);
    ck_assert_int_eq(caimg_h5_stream_close(z), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);

    f = caimg_h5_open(p);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(caimg_h5_read_rows(f, "/movie", CAIMG_DT_U16, 1, 4, buf), 0);
    ck_assert_int_eq(memcmp(buf, mv + NP, sizeof(uint16_t) * 4 * NP), 0);
    ck_assert_int_eq(caimg_h5_read_rows(f, "/z", CAIMG_DT_U16, 0, T, buf), 0);
    ck_assert_int_eq(memcmp(buf, mv, sizeof(uint16_t) * T * NP), 0);
    ck_assert_int_eq(caimg_h5_read_rows(f, "/movie", CAIMG_DT_F32, 3, 2, fl), 0);
    for (size_t i = 0; i < 2 * NP; i++) ck_assert_float_eq(fl[i], mv[3 * NP + i]);

    size_t rows[3] = {4, 0, 2};
    const void *ptr[3];
    caimg_h5_map *m = caimg_h5_map_rows(f, "/movie", CAIMG_DT_U16, 3, rows, ptr);
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_null(caimg_h5_map_rows(f, "/z", CAIMG_DT_U16, 3, rows, ptr));
    ck_assert_ptr_null(caimg_h5_map_rows(f, "/movie", CAIMG_DT_F32, 3, rows, ptr));
    caimg_h5_close(f);
    /* The frames stay readable after the file is closed. */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(memcmp(ptr[i], mv + rows[i] * NP, sizeof(uint16_t) * NP), 0);
    caimg_h5_unmap(m);
    free(mv);
    free(buf);
    free(fl);
    tu_rmdir(d);
}
END_TEST

START_TEST(provenance_chain_and_links)
{
    char *d = tu_tmpdir();
    char sub[600];
    snprintf(sub, sizeof sub, "%s/run", d);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    const char *a = tu_path(sub, "raw.h5"), *b = tu_path(sub, "mc.h5");
    ck_assert_int_eq(caimg_h5_commit(make_movie_file(a, "import", 5)), 0);

    caimg_h5 *f = caimg_h5_create(b, "mc", "caimg mc raw.h5 -o mc.h5");
    ck_assert_int_eq(caimg_h5_add_input(f, a, 1), 0);
    float shifts[10] = {0};
    size_t dims[2] = {5, 2};
    ck_assert_int_eq(caimg_h5_write(f, "/mc/shifts", CAIMG_DT_F32, 2, dims, shifts), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);

    /* Move the whole directory: relative links must still resolve. */
    char moved[600], cmd[1300];
    snprintf(moved, sizeof moved, "%s/moved", d);
    snprintf(cmd, sizeof cmd, "mv '%s' '%s'", sub, moved);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(chdir("/"), 0);
    f = caimg_h5_open(tu_path(moved, "mc.h5"));
    ck_assert_ptr_nonnull(f);
    ck_assert(caimg_h5_exists(f, "/provenance/00_import"));
    ck_assert(caimg_h5_exists(f, "/provenance/01_mc"));
    ck_assert(caimg_h5_exists(f, "/mc/shifts"));
    uint16_t frame[20];
    ck_assert_int_eq(caimg_h5_read_rows(f, "/movie", CAIMG_DT_U16, 4, 1, frame), 0);
    ck_assert_uint_eq(frame[7], 407);
    double fs;
    ck_assert_int_eq(caimg_h5_get_attr_double(f, "/movie", "fs", &fs), 0);
    ck_assert_double_eq(fs, 30.0);
    char *inputs;
    ck_assert_int_eq(caimg_h5_get_attr_string(f, "/provenance/01_mc", "inputs", &inputs), 0);
    ck_assert_ptr_nonnull(strstr(inputs, "raw.h5"));
    free(inputs);
    caimg_h5_close(f);
    tu_rmdir(d);
}
END_TEST

START_TEST(refuses_to_overwrite_input)
{
    char *d = tu_tmpdir();
    const char *a = tu_path(d, "raw.h5");
    ck_assert_int_eq(caimg_h5_commit(make_movie_file(a, "import", 2)), 0);
    caimg_h5 *f = caimg_h5_create(a, "mc", "");
    ck_assert_int_eq(caimg_h5_add_input(f, a, 1), CAIMG_EINVAL);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "overwrite"));
    caimg_h5_close(f);
    /* The input is intact. */
    f = caimg_h5_open(a);
    ck_assert_ptr_nonnull(f);
    caimg_h5_close(f);
    tu_rmdir(d);
}
END_TEST

START_TEST(open_errors_name_the_file)
{
    char *d = tu_tmpdir();
    const char *txt = tu_path(d, "notes.h5");
    FILE *fp = fopen(txt, "w");
    fputs("not hdf5\n", fp);
    fclose(fp);
    ck_assert_ptr_null(caimg_h5_open(txt));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "notes.h5: not an HDF5 file"));
    ck_assert_ptr_null(caimg_h5_open(tu_path(d, "missing.h5")));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "missing.h5"));
    /* A foreign HDF5 file. */
    const char *foreign = tu_path(d, "foreign.h5");
    hid_t fid = H5Fcreate(foreign, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(fid);
    ck_assert_ptr_null(caimg_h5_open(foreign));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "not a caimg file"));
    int is_caimg = 1;
    caimg_h5 *f = caimg_h5_open_any(foreign, &is_caimg);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(is_caimg, 0);
    caimg_h5_close(f);
    tu_rmdir(d);
}
END_TEST

START_TEST(tables)
{
    char *d = tu_tmpdir();
    const char *p = tu_path(d, "t.tsv");
    FILE *fp = fopen(p, "w");
    fputs("# comment\nonset_frame\tstimulus\tduration_frames\n10\t3\t5\n40\tNA\t5\n", fp);
    fclose(fp);
    caimg_table *t = caimg_table_read(p);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->nrows, 2);
    ck_assert_uint_eq(t->ncols, 3);
    ck_assert_int_eq(caimg_table_column(t, "stimulus"), 1);
    ck_assert_double_eq(t->data[3], 40);
    ck_assert(isnan(t->data[4]));
    caimg_table_free(t);
    fp = fopen(p, "w");
    fputs("1 2 3\n4 5\n", fp);
    fclose(fp);
    ck_assert_ptr_null(caimg_table_read(p));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "line 2 has 2 fields, expected 3"));
    fp = fopen(p, "w");
    fputs("1,2\n3,x\n", fp);
    fclose(fp);
    ck_assert_ptr_null(caimg_table_read(p));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "'x' is not a number"));
    /* A NUL byte is a binary file, not a short line; a UTF-8 byte order
     * mark (spreadsheets) does not make the first row a header. */
    fp = fopen(p, "w");
    fwrite("1\t2\n3\t\0\t4\n", 1, 11, fp);
    fclose(fp);
    ck_assert_ptr_null(caimg_table_read(p));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "line 2 holds a NUL byte"));
    fp = fopen(p, "w");
    fputs("\xEF\xBB\xBF" "1\t2\n3\t4\n", fp);
    fclose(fp);
    t = caimg_table_read(p);
    ck_assert_ptr_nonnull(t);
    ck_assert_uint_eq(t->nrows, 2);
    ck_assert_ptr_null(t->colnames);
    ck_assert_double_eq(t->data[0], 1);
    caimg_table_free(t);

    caimg_outfile *o = caimg_outfile_open(tu_path(d, "o.tsv"));
    fprintf(caimg_outfile_fp(o), "x\n");
    caimg_outfile_abort(o);
    ck_assert_int_eq(tu_count(d, "o.tsv"), 0);
    tu_rmdir(d);
}
END_TEST

/* A spreadsheet's TSV often has blank lines between blocks and ends with a
 * line of spaces; those hold no row.  caimg_table_read (schedules, shifts,
 * stimuli), the streaming trace reader (dff, deconv) and the response
 * reader (fit) read the same text the same way.  caimg_table_read took a
 * line of spaces for a row of one field ("line 4 has 1 fields, expected
 * 3"), and a tab-only line for a row of missing values. */
START_TEST(tables_skip_blank_lines)
{
    char *d = tu_tmpdir();
    const char *p = tu_path(d, "t.tsv");
    static const char text[] =
        "# comment\n"
        "   \n"                          /* spaces before the header */
        "  # an indented comment\n"
        "a\tb\tc\n"
        "1\t2\t3\n"
        "\n"
        "\t\t\n"                       /* tabs only */
        "4\tNA\t6\r\n"
        " \t \r\n"                     /* whitespace, Windows line end */
        "7\t8\t9\n"
        "    ";                           /* a last line of spaces, no newline */
    FILE *fp = fopen(p, "w");
    fputs(text, fp);
    fclose(fp);
    static const double want[9] = {1, 2, 3, 4, NAN, 6, 7, 8, 9};

    caimg_table *t = caimg_table_read(p);
    ck_assert_msg(t != NULL, "caimg_table_read: %s", caimg_errmsg());
    ck_assert_uint_eq(t->nrows, 3);
    ck_assert_uint_eq(t->ncols, 3);
    ck_assert_int_eq(caimg_table_column(t, "c"), 2);
    for (size_t i = 0; i < 9; i++)
        ck_assert(isnan(want[i]) ? isnan(t->data[i]) : t->data[i] == want[i]);
    caimg_table_free(t);

    size_t nr = 0, nc = 0;
    caimg_trace_table *tt = caimg_trace_table_open(p, &nr, &nc);
    ck_assert_msg(tt != NULL, "caimg_trace_table_open: %s", caimg_errmsg());
    ck_assert_uint_eq(nr, 3);
    ck_assert_uint_eq(nc, 3);
    float buf[9];
    ck_assert_int_eq(caimg_trace_table_read(tt, 3, buf), 0);
    for (size_t i = 0; i < 9; i++)
        ck_assert(isnan(want[i]) ? isnan(buf[i]) : buf[i] == (float)want[i]);
    caimg_trace_table_close(tt);

    /* The response reader: the same text with a stimulus column. */
    fp = fopen(p, "w");
    fputs("stimulus\tn1\n  \n0\t1.5\n\t\n\n1\t2.5\n \t\n", fp);
    fclose(fp);
    caimg_resp *r = caimg_resp_read(p);
    ck_assert_msg(r != NULL, "caimg_resp_read: %s", caimg_errmsg());
    ck_assert_uint_eq(r->npres, 2);
    ck_assert_uint_eq(r->nneur, 1);
    ck_assert_uint_eq(r->stim[1], 1);
    ck_assert(r->r[1] == 2.5f);
    caimg_resp_free(r);

    /* Only whitespace and comments: no data rows, for both readers. */
    fp = fopen(p, "w");
    fputs("# nothing\n \n\t\n", fp);
    fclose(fp);
    ck_assert_ptr_null(caimg_table_read(p));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "no data rows"));
    ck_assert_ptr_null(caimg_trace_table_open(p, &nr, &nc));
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "no data rows"));
    tu_rmdir(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("h5io");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, write_read_round_trip);
    tcase_add_test(tc, abandon_leaves_nothing);
    tcase_add_test(tc, stream_rounds_and_clamps);
    tcase_add_test(tc, whole_frame_chunks_direct_and_mapped);
    tcase_add_test(tc, provenance_chain_and_links);
    tcase_add_test(tc, refuses_to_overwrite_input);
    tcase_add_test(tc, open_errors_name_the_file);
    tcase_add_test(tc, tables);
    tcase_add_test(tc, tables_skip_blank_lines);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
