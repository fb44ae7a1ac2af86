/* ptv_gst.c -- see ptv_gst.h. */
#include "ptv_gst.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include <gst/gst.h>

#include "ptv_err.h"

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int init_ok;
static char init_msg[256];

static void do_init(void) {
  GError *e = NULL;
  if (gst_init_check(NULL, NULL, &e)) init_ok = 1;
  else ptv_gst_msg(init_msg, sizeof init_msg, "GStreamer failed to initialise: %s", e ? e->message : "unknown error");
  g_clear_error(&e);
}

int ptv_gst_init(char *err, size_t err_len) {
  pthread_once(&init_once, do_init);
  if (init_ok) return 0;
  ptv_gst_msg(err, err_len, "%s", init_msg);
  return PTV_ERR_IO;
}

int ptv_gst_have(const char *name) {
  GstElementFactory *f = gst_element_factory_find(name);
  if (!f) return 0;
  gst_object_unref(f);
  return 1;
}

int ptv_gst_need(const char *name, const char *pkg, char *err, size_t err_len) {
  if (ptv_gst_have(name)) return 0;
  ptv_gst_msg(err, err_len, "GStreamer element %s is missing (apt-get install %s)", name, pkg);
  return PTV_ERR_NOT_FOUND;
}

void ptv_gst_msg(char *buf, size_t len, const char *fmt, ...) {
  if (!buf || !len) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '\r') *p = ' ';
}
