#include "ccurl.h"

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value) { return curl_easy_setopt(handle, option, value); }
CURLcode ccurl_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback callback) { return curl_easy_setopt(handle, option, callback); }
CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value) { return curl_easy_getinfo(handle, info, value); }

// Aborting every transfer of the process (a stop requested by a signal): a flag that each
// transfer's progress callback reads, so a transfer stuck on a silent server ends at once with
// CURLE_ABORTED_BY_CALLBACK instead of waiting for its timeout.
#include <stdatomic.h>
static atomic_int ccurl_aborting = 0;

void ccurl_abort_all(void) { atomic_store(&ccurl_aborting, 1); }
int ccurl_aborted(void) { return atomic_load(&ccurl_aborting); }

static int ccurl_xferinfo(void *context, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)context; (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
    return atomic_load(&ccurl_aborting) ? 1 : 0;
}

CURLcode ccurl_enable_abort(CURL *handle) {
    CURLcode rc = curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, ccurl_xferinfo);
    if (rc != CURLE_OK) return rc;
    return curl_easy_setopt(handle, CURLOPT_NOPROGRESS, 0L);
}
