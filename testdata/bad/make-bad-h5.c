/* make-bad-h5.c -- regenerate the HDF5 files of the bad-input corpus.
 * Build and run from testdata/bad:
 *   cc make-bad-h5.c $(pkg-config --cflags --libs hdf5) -o /tmp/mk && /tmp/mk
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hdf5.h>

static void caimg_attrs(hid_t f)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    hid_t sp = H5Screate(H5S_SCALAR);
    const char *v = "caimg-h5";
    hid_t a = H5Acreate2(f, "caimg_format", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
}

static void dataset(hid_t f, const char *name, int rank, const hsize_t *dims, hid_t type)
{
    hid_t sp = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    size_t n = H5Tget_size(type);
    for (int i = 0; i < rank; i++) n *= dims[i];
    void *buf = calloc(n, 1);
    H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf);
    free(buf);
    H5Dclose(d);
    H5Sclose(sp);
}

int main(void)
{
    hsize_t d3[3] = {4, 8, 8}, d2[2] = {8, 8}, d4[3] = {8, 8, 4};
    /* Not a caimg file: SIMA-style /imaging ordered (y, x, t). */
    hid_t f = H5Fcreate("not-caimg.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    dataset(f, "/imaging", 3, d4, H5T_STD_U16LE);
    H5Fclose(f);
    /* A caimg file whose movie is a single image. */
    f = H5Fcreate("movie-rank2.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    caimg_attrs(f);
    dataset(f, "/movie", 2, d2, H5T_STD_U16LE);
    H5Fclose(f);
    /* A caimg file without a movie. */
    f = H5Fcreate("no-movie.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    caimg_attrs(f);
    dataset(f, "/other", 2, d2, H5T_IEEE_F32LE);
    H5Fclose(f);
    /* A movie of complex numbers (a compound type). */
    f = H5Fcreate("movie-complex.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    caimg_attrs(f);
    hid_t c = H5Tcreate(H5T_COMPOUND, 8);
    H5Tinsert(c, "r", 0, H5T_IEEE_F32LE);
    H5Tinsert(c, "i", 4, H5T_IEEE_F32LE);
    dataset(f, "/movie", 3, d3, c);
    H5Tclose(c);
    H5Fclose(f);
    /* A movie with no frames. */
    hsize_t d0[3] = {0, 8, 8};
    f = H5Fcreate("movie-empty.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    caimg_attrs(f);
    dataset(f, "/movie", 3, d0, H5T_STD_U16LE);
    H5Fclose(f);
    /* A valid file cut short. */
    f = H5Fcreate("truncated.h5", H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    caimg_attrs(f);
    hsize_t big[3] = {16, 32, 32};
    dataset(f, "/movie", 3, big, H5T_STD_U16LE);
    H5Fclose(f);
    FILE *fp = fopen("truncated.h5", "r+");
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fclose(fp);
    if (truncate("truncated.h5", n / 3) != 0) return 1;
    return 0;
}
