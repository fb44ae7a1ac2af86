/* ptv_gst.h -- what the GStreamer modules (ptv_media, ptv_player) share:
 * initialising GStreamer once, checking that an element is installed, and
 * one-line messages.
 *
 * Functions that return int return 0 on success or a negative PTV_ERR_*
 * code (ptv_err.h). Any thread may call them.
 */
#ifndef PTV_GST_H
#define PTV_GST_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Initialises GStreamer (once per process; later calls return the first
 * outcome). Returns 0, or PTV_ERR_IO with the reason in err (may be
 * NULL/0). */
int ptv_gst_init(char *err, size_t err_len);

/* 1 if the GStreamer element `name` is installed, else 0. */
int ptv_gst_have(const char *name);

/* 0 if the element `name` is installed; else PTV_ERR_NOT_FOUND with a
 * message naming it and the Debian package `pkg` that has it. */
int ptv_gst_need(const char *name, const char *pkg, char *err, size_t err_len);

/* printf into buf (if buf and len), on one line: GStreamer's messages may
 * hold newlines, and ours are one line each. */
void ptv_gst_msg(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif

#endif
