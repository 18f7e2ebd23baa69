#include "ccurl.h"

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback callback) { return curl_easy_setopt(handle, option, callback); }
CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value) { return curl_easy_getinfo(handle, info, value); }
CURLMcode ccurl_multi_setopt_long(CURLM *multi, CURLMoption option, long value) { return curl_multi_setopt(multi, option, value); }

// Cancelling a transfer: its own flag (`cancelled`, set when the Swift task that waits for it is
// cancelled), read by its progress callback. libcurl calls that at least once a second, so a
// cancelled transfer ends (CURLE_ABORTED_BY_CALLBACK) within a second whatever the server does.
#include <stdatomic.h>
#include <stdlib.h>
static int ccurl_xferinfo(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
    return context != NULL && atomic_load((atomic_int *)context) ? 1 : 0;
}

CURLcode ccurl_enable_abort(CURL *handle, void *cancelled) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, ccurl_xferinfo);
    if (rc != CURLE_OK) return rc;
    rc = curl_easy_setopt(handle, CURLOPT_XFERINFODATA, (void *)cancelled);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
}

void *ccurl_flag_new(void) {
    atomic_int *flag = malloc(sizeof(atomic_int));
    if (flag != NULL) atomic_init(flag, 0);
    return flag;
}
void ccurl_flag_set(void *flag) { atomic_store((atomic_int *)flag, 1); }
void ccurl_flag_free(void *flag) { free(flag); }
