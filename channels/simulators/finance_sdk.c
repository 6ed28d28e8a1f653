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
