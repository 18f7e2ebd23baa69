// Non-variadic wrappers of libcurl's variadic setopt/getinfo, which Swift cannot call directly.
#ifndef CCURL_H
#define CCURL_H
#include <curl/curl.h>

typedef size_t (*ccurl_data_callback)(char *data, size_t size, size_t count, void *context);

CURLcode ccurl_setopt_long(CURL *handle, CURLoption option, long value);
CURLcode ccurl_setopt_offset(CURL *handle, CURLoption option, curl_off_t value);
CURLcode ccurl_setopt_pointer(CURL *handle, CURLoption option, void *value);
CURLcode ccurl_setopt_string(CURL *handle, CURLoption option, const char *value);
CURLcode ccurl_setopt_callback(CURL *handle, CURLoption option, ccurl_data_callback callback);
CURLcode ccurl_getinfo_long(CURL *handle, CURLINFO info, long *value);
CURLMcode ccurl_multi_setopt_long(CURLM *multi, CURLMoption option, long value);
// A transfer with ccurl_enable_abort ends (CURLE_ABORTED_BY_CALLBACK) once its flag is set.
CURLcode ccurl_enable_abort(CURL *handle, void *cancelled);
// A transfer's cancellation flag: made, set (from any thread), freed after the transfer.
// (An opaque pointer: Swift does not import C11 atomics.)
void *ccurl_flag_new(void);
void ccurl_flag_set(void *flag);
void ccurl_flag_free(void *flag);
#endif
