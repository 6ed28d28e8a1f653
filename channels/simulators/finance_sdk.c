/* The WeCom simulator's stand-in for Tencent's finance SDK (libWeWorkFinanceSdk_C.so): the SDK's
 * documented C functions and signatures, serving the archive the simulator writes under
 * $FAKE_FINANCE_DIR: <corpid>.secret (the 会话内容存档 Secret Init accepts) and <corpid>.jsonl (one
 * entry per line, each starting {"seq":N,...}). DecryptData undoes the simulator's cipher (hex of
 * the message XOR the random key): Tencent's own cipher lives inside its SDK, and the hub only
 * hands it the key. Built with gcc by channels/simulators/wecom_archive.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Slice_t { char *buf; int len; } Slice_t;
typedef struct WeWorkFinanceSdk_t { int ready; char corp[128]; } WeWorkFinanceSdk_t;

static FILE *corp_file(const char *corp, const char *suffix) {
    const char *dir = getenv("FAKE_FINANCE_DIR");
    char path[4096];
    if (!dir || strlen(corp) > 100 || strchr(corp, '/')) return NULL;
    snprintf(path, sizeof path, "%s/%s.%s", dir, corp, suffix);
    return fopen(path, "r");
}

WeWorkFinanceSdk_t *NewSdk(void) { return calloc(1, sizeof(WeWorkFinanceSdk_t)); }

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
    char want[256] = {0};
    FILE *file = (sdk && corpid && secret) ? corp_file(corpid, "secret") : NULL;
    if (!file) return 10000;
    size_t n = fread(want, 1, sizeof want - 1, file);
    fclose(file);
    want[strcspn(want, "\n")] = 0;
    if (n == 0 || strcmp(secret, want)) return 10000;
    snprintf(sdk->corp, sizeof sdk->corp, "%s", corpid);
    sdk->ready = 1;
    return 0;
}

void DestroySdk(WeWorkFinanceSdk_t *sdk) { free(sdk); }
Slice_t *NewSlice(void) { return calloc(1, sizeof(Slice_t)); }
void FreeSlice(Slice_t *slice) { if (slice) { free(slice->buf); free(slice); } }
char *GetContentFromSlice(Slice_t *slice) { return slice->buf; }
int GetSliceLen(Slice_t *slice) { return slice->len; }

static void put(Slice_t *slice, const char *data, size_t len) {
    free(slice->buf);
    slice->buf = malloc(len + 1);
    memcpy(slice->buf, data, len);
    slice->buf[len] = 0;
    slice->len = (int)len;
}

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit, const char *proxy,
                const char *passwd, int timeout, Slice_t *chat_datas) {
    (void)proxy; (void)passwd; (void)timeout;
    if (!sdk || !sdk->ready || limit == 0 || limit > 1000 || !chat_datas) return 10000;
    FILE *file = corp_file(sdk->corp, "jsonl");
    size_t cap = 4096, len = 0;
    char *out = malloc(cap), line[65536];
    len += (size_t)sprintf(out, "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[");
    unsigned int taken = 0;
    while (file && taken < limit && fgets(line, sizeof line, file)) {
        const char *at = strstr(line, "\"seq\":");
        if (!at || strtoull(at + 6, NULL, 10) <= seq) continue;
        size_t n = strcspn(line, "\n");
        while (len + n + 8 > cap) { cap *= 2; out = realloc(out, cap); }
        if (taken++) out[len++] = ',';
        memcpy(out + len, line, n);
        len += n;
    }
    if (file) fclose(file);
    while (len + 3 > cap) { cap *= 2; out = realloc(out, cap); }
    out[len++] = ']'; out[len++] = '}';
    put(chat_datas, out, len);
    free(out);
    return 0;
}

int DecryptData(const char *encrypt_key, const char *encrypt_msg, Slice_t *msg) {
    size_t klen = encrypt_key ? strlen(encrypt_key) : 0, mlen = encrypt_msg ? strlen(encrypt_msg) : 0;
    if (!klen || !mlen || mlen % 2 || !msg) return 10006;
    char *plain = malloc(mlen / 2 + 1);
    for (size_t i = 0; i < mlen / 2; i++) {
        unsigned int byte;
        if (sscanf(encrypt_msg + 2 * i, "%2x", &byte) != 1) { free(plain); return 10006; }
        plain[i] = (char)(byte ^ (unsigned char)encrypt_key[i % klen]);
    }
    if (plain[0] != '{') { free(plain); return 10006; }  /* the wrong key gives no JSON */
    put(msg, plain, mlen / 2);
    free(plain);
    return 0;
}

/* GetMediaData serves $FAKE_FINANCE_DIR/<corpid>.media/<sdkfileid> in pieces of at most
 * MEDIA_PIECE bytes, as Tencent's does (512 KB there, smaller here so that every file takes
 * several calls): indexbuf is empty at first, then the outindexbuf of the call before. */
#define MEDIA_PIECE 4096
typedef struct MediaData_t { char *outindexbuf; int out_len; char *data; int data_len; int is_finish; } MediaData_t;

MediaData_t *NewMediaData(void) { return calloc(1, sizeof(MediaData_t)); }
void FreeMediaData(MediaData_t *m) { if (m) { free(m->outindexbuf); free(m->data); free(m); } }
char *GetOutIndexBuf(MediaData_t *m) { return m->outindexbuf; }
char *GetData(MediaData_t *m) { return m->data; }
int GetIndexLen(MediaData_t *m) { return m->out_len; }
int GetDataLen(MediaData_t *m) { return m->data_len; }
int IsMediaDataFinish(MediaData_t *m) { return m->is_finish; }

int GetMediaData(WeWorkFinanceSdk_t *sdk, const char *indexbuf, const char *sdk_fileid, const char *proxy,
                 const char *passwd, int timeout, MediaData_t *media) {
    (void)proxy; (void)passwd; (void)timeout;
    const char *dir = getenv("FAKE_FINANCE_DIR");
    char path[4096];
    if (!sdk || !sdk->ready || !sdk_fileid || !media || !dir) return 10000;
    for (const char *c = sdk_fileid; *c; c++) if (*c == '/' || *c == '.') return 10005;
    if (!*sdk_fileid || strlen(sdk_fileid) > 200) return 10005;
    snprintf(path, sizeof path, "%s/%s.media/%s", dir, sdk->corp, sdk_fileid);
    FILE *file = fopen(path, "rb");
    if (!file) return 10005;
    long offset = (indexbuf && *indexbuf) ? strtol(indexbuf, NULL, 10) : 0;
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    if (offset < 0 || offset > size) { fclose(file); return 10000; }
    fseek(file, offset, SEEK_SET);
    long n = size - offset < MEDIA_PIECE ? size - offset : MEDIA_PIECE;
    free(media->data);
    media->data = malloc((size_t)n + 1);
    media->data_len = (int)fread(media->data, 1, (size_t)n, file);
    fclose(file);
    free(media->outindexbuf);
    media->outindexbuf = malloc(32);
    media->out_len = snprintf(media->outindexbuf, 32, "%ld", offset + media->data_len);
    media->is_finish = offset + media->data_len >= size;
    return 0;
}
