// gguf-writer: writes a synthetic LLaMA-architecture model as a GGUF v3 file
// that llama.cpp loads and runs. The weights come from a fixed-seed generator,
// so the text it produces is noise, but the compute per token is that of a
// real model of the same shape (about 2N FLOPs per token, docs/theory.md §1).
//
// Same arguments give a byte-identical file: the generator is integer-only,
// quantisation and float-to-half conversion use plain IEEE arithmetic, and
// nothing depends on the time, the host or the environment.
//
// Layout (GGUF v3, little endian): header, metadata key/values, tensor infos,
// padding to the alignment, tensor data (each tensor aligned).
// Embeddings are tied (no output.weight): llama.cpp then uses token_embd as
// the output head, so the parameter count N is also what one token costs.
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 32u  // GGUF default alignment (general.alignment not written)
#define QK 32      // block size of q8_0 and q4_0

enum { GT_U32 = 4, GT_I32 = 5, GT_F32 = 6, GT_BOOL = 7, GT_STR = 8, GT_ARR = 9, GT_U64 = 10 };
enum wtype { W_F32 = 0, W_F16 = 1, W_Q4_0 = 2, W_Q8_0 = 8 };

struct dims {
	uint32_t vocab, embd, layers, ff, heads, kv_heads, ctx;
};

struct tensor {
	char name[64];
	uint32_t ndim;
	uint64_t ne[2];
	enum wtype type;
	uint64_t offset, size;
	float scale;  // weights uniform in [-scale, scale]; 0: constant 1.0 (norms)
};

// ---- deterministic generator ----------------------------------------------

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h;
}

// Uniform in [-scale, scale): 24 random bits, exact in float.
static float uniform(uint64_t *s, float scale)
{
	int32_t u = (int32_t)(splitmix64(s) >> 40) - (1 << 23);
	return (float)u * (scale / (float)(1 << 23));
}

// IEEE binary16 from binary32, round to nearest even; written out so the file
// does not depend on the compiler's _Float16 support.
static uint16_t f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint32_t sign = (x >> 16) & 0x8000u;
	uint32_t exp = (x >> 23) & 0xffu;
	uint32_t man = x & 0x7fffffu;
	if (exp == 0xff)
		return (uint16_t)(sign | 0x7c00u | (man ? 0x200u : 0));
	int32_t e = (int32_t)exp - 127 + 15;
	if (e >= 31)
		return (uint16_t)(sign | 0x7c00u);
	if (e <= 0) {
		if (e < -10)
			return (uint16_t)sign;
		man |= 0x800000u;
		uint32_t shift = (uint32_t)(14 - e);
		uint32_t h = man >> shift, rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
		if (rem > half || (rem == half && (h & 1)))
			h++;
		return (uint16_t)(sign | h);
	}
	uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
		h++;  // may carry into the exponent, which is still correct
	return (uint16_t)(sign | h);
}

// ---- buffered output -------------------------------------------------------

static FILE *out;
static uint64_t written;
static bool werr;

static void wbytes(const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, out) != n)
		werr = true;
	written += n;
}
static void w32(uint32_t v) { uint8_t b[4] = {v, v >> 8, v >> 16, v >> 24}; wbytes(b, 4); }
static void w64(uint64_t v) { w32((uint32_t)v); w32((uint32_t)(v >> 32)); }
static void wf32(float f) { uint32_t v; memcpy(&v, &f, 4); w32(v); }
static void wstr(const char *s) { size_t n = strlen(s); w64(n); wbytes(s, n); }
static void wpad(void)
{
	static const uint8_t zero[ALIGN];
	wbytes(zero, (ALIGN - written % ALIGN) % ALIGN);
}

// The header states the key count up front; n_kv_done checks it at the end.
static uint64_t n_kv_done;
static void key(const char *k, uint32_t type) { wstr(k); w32(type); n_kv_done++; }
static void kv_u32(const char *k, uint32_t v) { key(k, GT_U32); w32(v); }
static void kv_u64(const char *k, uint64_t v) { key(k, GT_U64); w64(v); }
static void kv_f32(const char *k, float v) { key(k, GT_F32); wf32(v); }
static void kv_bool(const char *k, bool v) { uint8_t b = v; key(k, GT_BOOL); wbytes(&b, 1); }
static void kv_str(const char *k, const char *v) { key(k, GT_STR); wstr(v); }

// ---- vocabulary ------------------------------------------------------------
// SentencePiece-style ("llama" tokenizer in llama.cpp): control tokens, the 256
// byte-fallback tokens, then made-up pieces: "▁", printable ASCII, "▁"+ASCII,
// and every lowercase pair and triple with and without "▁", in that order
// until the vocabulary is full. All pieces are distinct (llama.cpp asserts it)
// and every prefix of a piece is a piece, so SPM merging can reach them.

enum { TT_NORMAL = 1, TT_UNKNOWN = 2, TT_CONTROL = 3, TT_BYTE = 6 };
#define N_SPECIAL 5  // <unk> <s> </s> <|im_start|> <|im_end|>
#define VOCAB_MIN (N_SPECIAL + 256 + 1 + 94)
static const char SPACE[] = "\xe2\x96\x81";  // U+2581, SentencePiece's space

static void vocab_piece(uint32_t i, char *buf, int *type)
{
	static const char *special[N_SPECIAL] = {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};
	*type = TT_NORMAL;
	if (i < N_SPECIAL) {
		strcpy(buf, special[i]);
		*type = i == 0 ? TT_UNKNOWN : TT_CONTROL;
		return;
	}
	i -= N_SPECIAL;
	if (i < 256) {
		sprintf(buf, "<0x%02X>", i);
		*type = TT_BYTE;
		return;
	}
	i -= 256;
	if (i == 0) {
		strcpy(buf, SPACE);
		return;
	}
	i -= 1;
	for (int pre = 0; pre < 2; pre++) {  // ASCII 33..126, bare then after "▁"
		if (i < 94) {
			sprintf(buf, "%s%c", pre ? SPACE : "", (char)(33 + i));
			return;
		}
		i -= 94;
	}
	for (int len = 2; len <= 4; len++) {
		uint32_t n = 1;
		for (int k = 0; k < len; k++)
			n *= 26;
		for (int pre = 0; pre < 2; pre++) {
			if (i < n) {
				char *p = buf + sprintf(buf, "%s", pre ? SPACE : "");
				for (int k = len - 1; k >= 0; k--) {
					p[k] = (char)('a' + i % 26);
					i /= 26;
				}
				p[len] = 0;
				return;
			}
			i -= n;
		}
	}
	sprintf(buf, "[unused%u]", i);  // beyond ~950k tokens; never reached in practice
}

// ChatML: llama.cpp's built-in template detection recognises <|im_start|>.
static const char CHAT_TEMPLATE[] =
	"{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + "
	"message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
	"{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

// ---- shapes and parameter count --------------------------------------------

static uint64_t param_count(const struct dims *d)
{
	uint64_t e = d->embd, hd = d->embd / d->heads, kv = hd * d->kv_heads;
	uint64_t layer = e * e * 2 + e * kv * 2 + e * d->ff * 3 + e * 2;
	return (uint64_t)d->vocab * e + d->layers * layer + e;
}

// Round to the nearest multiple of 64 (keeps rows whole q8_0/q4_0 blocks).
static uint32_t round64(double x)
{
	uint32_t r = (uint32_t)(x / 64.0 + 0.5) * 64u;
	return r < 64 ? 64 : r;
}

// Shape for a target size in millions of parameters: head size 64, one layer
// per 64 of width (the usual aspect ratio of small LLaMA-style models),
// feed-forward 8/3 of the width; pick the width whose model is closest to the
// target, then the layer count that brings it closest.
static void dims_for_params(double target_m, struct dims *d)
{
	double target = target_m * 1e6, best = -1;
	uint32_t best_w = 64;
	for (uint32_t w = 128; w <= 8192; w += 64) {
		struct dims t = *d;
		t.embd = w, t.heads = t.kv_heads = w / 64, t.layers = w / 64, t.ff = round64(w * 8.0 / 3.0);
		double err = fabs((double)param_count(&t) - target);
		if (best < 0 || err < best)
			best = err, best_w = w;
	}
	d->embd = best_w;
	d->heads = d->kv_heads = best_w / 64;
	d->ff = round64(best_w * 8.0 / 3.0);
	d->layers = 1;
	uint64_t one = param_count(d);
	d->layers = 2;
	double per_layer = (double)(param_count(d) - one);
	double base = (double)one - per_layer;
	long l = lround((target - base) / per_layer);
	d->layers = l < 1 ? 1 : (uint32_t)l;
}

static uint64_t tensor_bytes(enum wtype t, uint64_t n)
{
	switch (t) {
	case W_F32: return n * 4;
	case W_F16: return n * 2;
	case W_Q8_0: return n / QK * 34;
	case W_Q4_0: return n / QK * 18;
	}
	return 0;
}

// ---- tensor data -----------------------------------------------------------

static void write_tensor(const struct tensor *t, uint64_t seed)
{
	uint64_t s = seed ^ fnv1a(t->name);
	uint64_t cols = t->ne[0], rows = t->ndim > 1 ? t->ne[1] : 1;
	float *row = malloc(cols * sizeof(float));
	uint8_t *buf = malloc(cols * 4 + 64);
	if (!row || !buf) {
		fprintf(stderr, "gguf-writer: out of memory\n");
		exit(1);
	}
	splitmix64(&s);
	for (uint64_t r = 0; r < rows; r++) {
		for (uint64_t c = 0; c < cols; c++)
			row[c] = t->scale > 0 ? uniform(&s, t->scale) : 1.0f;
		uint8_t *p = buf;
		if (t->type == W_F32) {
			for (uint64_t c = 0; c < cols; c++, p += 4) {
				uint32_t v;
				memcpy(&v, &row[c], 4);
				p[0] = v, p[1] = v >> 8, p[2] = v >> 16, p[3] = v >> 24;
			}
		} else if (t->type == W_F16) {
			for (uint64_t c = 0; c < cols; c++, p += 2) {
				uint16_t h = f32_to_f16(row[c]);
				p[0] = h, p[1] = h >> 8;
			}
		} else if (t->type == W_Q8_0) {
			// block: fp16 scale d, 32 int8; x ~= d * q
			for (uint64_t b = 0; b < cols; b += QK) {
				float amax = 0;
				for (int j = 0; j < QK; j++)
					amax = fmaxf(amax, fabsf(row[b + j]));
				float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0.0f;
				uint16_t h = f32_to_f16(d);
				*p++ = h, *p++ = h >> 8;
				for (int j = 0; j < QK; j++)
					*p++ = (uint8_t)(int8_t)lrintf(row[b + j] * id);
			}
		} else {
			// q4_0 block: fp16 scale d, 16 bytes of nibbles (low: j, high: j+16);
			// x ~= d * (q - 8), d chosen so the largest magnitude maps to -8.
			for (uint64_t b = 0; b < cols; b += QK) {
				float amax = 0, max = 0;
				for (int j = 0; j < QK; j++)
					if (fabsf(row[b + j]) > amax)
						amax = fabsf(row[b + j]), max = row[b + j];
				float d = max / -8.0f, id = d != 0 ? 1.0f / d : 0.0f;
				uint16_t h = f32_to_f16(d);
				*p++ = h, *p++ = h >> 8;
				for (int j = 0; j < QK / 2; j++) {
					int lo = (int)(row[b + j] * id + 8.5f), hi = (int)(row[b + j + QK / 2] * id + 8.5f);
					lo = lo > 15 ? 15 : lo < 0 ? 0 : lo;
					hi = hi > 15 ? 15 : hi < 0 ? 0 : hi;
					*p++ = (uint8_t)(lo | hi << 4);
				}
			}
		}
		wbytes(buf, (size_t)(p - buf));
	}
	free(row);
	free(buf);
}

// ---- main ------------------------------------------------------------------

static void usage(FILE *f)
{
	fprintf(f,
		"usage: gguf-writer (--params-m M | --dim D --layers L [--ff F] [--heads H]) [options] -o FILE\n"
		"Writes a synthetic LLaMA-architecture GGUF v3 model (random weights from a\n"
		"fixed seed, made-up SentencePiece-style vocabulary, ChatML template).\n"
		"The same arguments always give a byte-identical file.\n"
		"  --params-m M     choose a shape of about M million parameters (head size 64,\n"
		"                   one layer per 64 of width; overrides --dim/--layers/--ff/--heads/--kv-heads)\n"
		"  --dim D          embedding width (multiple of 64)\n"
		"  --layers L       number of transformer blocks\n"
		"  --ff F           feed-forward width (multiple of 32; default 8/3 of D)\n"
		"  --heads H        attention heads (default D/64)\n"
		"  --kv-heads K     key/value heads (default H; must divide H)\n"
		"  --vocab V        vocabulary size (default 32000, at least %d)\n"
		"  --ctx C          training context length recorded (default 2048)\n"
		"  --type T         q8_0 (default), q4_0 or f16\n"
		"  --seed S         generator seed (default 1)\n"
		"  -o FILE          output file (written to FILE.tmp, then renamed)\n"
		"  --dry-run        print the shape and parameter count, write nothing\n"
		"Prints the shape and the actual parameter count on stdout.\n",
		VOCAB_MIN);
}

static bool parse_u32(const char *s, uint32_t *v)
{
	char *end;
	errno = 0;
	unsigned long x = strtoul(s, &end, 10);
	if (errno || end == s || *end || x == 0 || x > 1000000 || s[0] == '-')
		return false;
	*v = (uint32_t)x;
	return true;
}

int main(int argc, char **argv)
{
	struct dims d = {.vocab = 32000, .ctx = 2048};
	double params_m = 0;
	uint64_t seed = 1;
	const char *path = NULL, *type_name = "q8_0";
	enum wtype wt = W_Q8_0;
	bool dry = false;
	static const struct option opts[] = {
		{"params-m", required_argument, 0, 'm'}, {"dim", required_argument, 0, 'd'},
		{"layers", required_argument, 0, 'l'},   {"ff", required_argument, 0, 'f'},
		{"heads", required_argument, 0, 'H'},    {"kv-heads", required_argument, 0, 'K'},
		{"vocab", required_argument, 0, 'v'},    {"ctx", required_argument, 0, 'c'},
		{"type", required_argument, 0, 't'},     {"seed", required_argument, 0, 's'},
		{"dry-run", no_argument, 0, 'n'},        {"help", no_argument, 0, 'h'},
		{0, 0, 0, 0}};
	int c;
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		uint32_t *dst = NULL;
		switch (c) {
		case 'm': {
			char *end;
			params_m = strtod(optarg, &end);
			if (end == optarg || *end || !(params_m >= 1 && params_m <= 100000)) {
				fprintf(stderr, "gguf-writer: --params-m wants a number of millions between 1 and 100000, got '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'd': dst = &d.embd; break;
		case 'l': dst = &d.layers; break;
		case 'f': dst = &d.ff; break;
		case 'H': dst = &d.heads; break;
		case 'K': dst = &d.kv_heads; break;
		case 'v': dst = &d.vocab; break;
		case 'c': dst = &d.ctx; break;
		case 't':
			type_name = optarg;
			if (!strcmp(optarg, "q8_0")) wt = W_Q8_0;
			else if (!strcmp(optarg, "q4_0")) wt = W_Q4_0;
			else if (!strcmp(optarg, "f16")) wt = W_F16;
			else {
				fprintf(stderr, "gguf-writer: --type must be q8_0, q4_0 or f16, got '%s'\n", optarg);
				return 2;
			}
			break;
		case 's': {
			char *end;
			errno = 0;
			seed = strtoull(optarg, &end, 0);
			if (errno || end == optarg || *end || optarg[0] == '-') {
				fprintf(stderr, "gguf-writer: --seed wants a non-negative integer, got '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'n': dry = true; break;
		case 'o': path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
		if (dst && !parse_u32(optarg, dst)) {
			const char *name = "?";
			for (const struct option *o = opts; o->name; o++)
				if (o->val == c)
					name = o->name;
			fprintf(stderr, "gguf-writer: --%s wants a positive integer up to 1000000, got '%s'\n", name, optarg);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "gguf-writer: unexpected argument '%s' (see --help)\n", argv[optind]);
		return 2;
	}
	if (params_m > 0) {
		uint32_t vocab = d.vocab;
		if (vocab < VOCAB_MIN) {
			fprintf(stderr, "gguf-writer: --vocab must be at least %d\n", VOCAB_MIN);
			return 2;
		}
		dims_for_params(params_m, &d);
	} else if (!d.embd || !d.layers) {
		fprintf(stderr, "gguf-writer: give --params-m M, or --dim and --layers (see --help)\n");
		return 2;
	}
	if (!d.heads)
		d.heads = d.embd / 64 ? d.embd / 64 : 1;
	if (!d.kv_heads)
		d.kv_heads = d.heads;
	if (!d.ff)
		d.ff = round64(d.embd * 8.0 / 3.0);
	if (d.vocab < VOCAB_MIN) {
		fprintf(stderr, "gguf-writer: --vocab must be at least %d\n", VOCAB_MIN);
		return 2;
	}
	if (d.embd % 64 || d.embd % d.heads || (d.embd / d.heads) % 2 || d.heads % d.kv_heads ||
	    d.ff % QK || ((d.embd / d.heads) * d.kv_heads) % QK) {
		fprintf(stderr, "gguf-writer: bad shape: --dim must be a multiple of 64 divisible by --heads into an even head size, "
				"--kv-heads must divide --heads, --ff must be a multiple of %d\n", QK);
		return 2;
	}
	if (!path && !dry) {
		fprintf(stderr, "gguf-writer: no output file (-o FILE)\n");
		return 2;
	}

	uint32_t hd = d.embd / d.heads, kvd = hd * d.kv_heads;
	uint64_t nparams = param_count(&d);
	printf("shape: vocab %u, dim %u, layers %u, ff %u, heads %u, kv-heads %u, type %s\n",
	       d.vocab, d.embd, d.layers, d.ff, d.heads, d.kv_heads, type_name);
	printf("params %" PRIu64 " (%.1fM)\n", nparams, nparams / 1e6);
	if (dry)
		return 0;

	// Tensor list. Scales give each matrix a variance of about 1/fan_in, so
	// activations stay finite through the RMS norms.
	size_t nt = 2 + (size_t)d.layers * 9;
	struct tensor *ts = calloc(nt, sizeof(*ts));
	if (!ts) {
		fprintf(stderr, "gguf-writer: out of memory\n");
		return 1;
	}
	size_t k = 0;
#define T2(nm, c, r, s) do { \
		snprintf(ts[k].name, sizeof ts[k].name, "%s", nm); \
		ts[k].ndim = 2, ts[k].ne[0] = (c), ts[k].ne[1] = (r), ts[k].type = wt, ts[k].scale = (s); k++; \
	} while (0)
#define T1(nm, c) do { \
		snprintf(ts[k].name, sizeof ts[k].name, "%s", nm); \
		ts[k].ndim = 1, ts[k].ne[0] = (c), ts[k].ne[1] = 1, ts[k].type = W_F32, ts[k].scale = 0; k++; \
	} while (0)
	float se = sqrtf(3.0f / d.embd), sf = sqrtf(3.0f / d.ff);
	T2("token_embd.weight", d.embd, d.vocab, se);
	T1("output_norm.weight", d.embd);
	for (uint32_t l = 0; l < d.layers; l++) {
		char nm[64];
#define BLK(suffix) (snprintf(nm, sizeof nm, "blk.%u." suffix, l), nm)
		T1(BLK("attn_norm.weight"), d.embd);
		T2(BLK("attn_q.weight"), d.embd, d.embd, se);
		T2(BLK("attn_k.weight"), d.embd, kvd, se);
		T2(BLK("attn_v.weight"), d.embd, kvd, se);
		T2(BLK("attn_output.weight"), d.embd, d.embd, se);
		T1(BLK("ffn_norm.weight"), d.embd);
		T2(BLK("ffn_gate.weight"), d.embd, d.ff, se);
		T2(BLK("ffn_up.weight"), d.embd, d.ff, se);
		T2(BLK("ffn_down.weight"), d.ff, d.embd, sf);
#undef BLK
	}
	uint64_t off = 0, counted = 0;
	for (size_t i = 0; i < nt; i++) {
		ts[i].offset = off;
		ts[i].size = tensor_bytes(ts[i].type, ts[i].ne[0] * ts[i].ne[1]);
		off += (ts[i].size + ALIGN - 1) / ALIGN * ALIGN;
		counted += ts[i].ne[0] * ts[i].ne[1];
	}
	if (counted != nparams) {
		fprintf(stderr, "gguf-writer: internal error: counted %" PRIu64 " parameters, expected %" PRIu64 "\n", counted, nparams);
		return 1;
	}

	size_t plen = strlen(path);
	char *tmp = malloc(plen + 5);
	if (!tmp)
		return 1;
	memcpy(tmp, path, plen);
	memcpy(tmp + plen, ".tmp", 5);
	out = fopen(tmp, "wb");
	if (!out) {
		fprintf(stderr, "gguf-writer: cannot create %s: %s\n", tmp, strerror(errno));
		return 1;
	}
	static char iobuf[1 << 20];
	setvbuf(out, iobuf, _IOFBF, sizeof iobuf);

	int file_type = wt == W_Q8_0 ? 7 : wt == W_Q4_0 ? 2 : 1;  // llama_ftype MOSTLY_*
	char name[96];
	snprintf(name, sizeof name, "erg-synthetic-%.0fM-%s", nparams / 1e6, type_name);

	uint64_t n_kv = 27;
	wbytes("GGUF", 4);
	w32(3);
	w64(nt);
	w64(n_kv);
	kv_str("general.architecture", "llama");
	kv_str("general.name", name);
	kv_u32("general.file_type", (uint32_t)file_type);
	kv_u32("general.quantization_version", 2);
	kv_u64("erg.param_count", nparams);
	kv_u64("erg.seed", seed);
	kv_u32("llama.vocab_size", d.vocab);
	kv_u32("llama.context_length", d.ctx);
	kv_u32("llama.embedding_length", d.embd);
	kv_u32("llama.block_count", d.layers);
	kv_u32("llama.feed_forward_length", d.ff);
	kv_u32("llama.attention.head_count", d.heads);
	kv_u32("llama.attention.head_count_kv", d.kv_heads);
	kv_u32("llama.rope.dimension_count", hd);
	kv_f32("llama.rope.freq_base", 10000.0f);
	kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
	kv_str("tokenizer.ggml.model", "llama");
	{  // tokens, scores, token types
		char piece[64];
		int type;
		key("tokenizer.ggml.tokens", GT_ARR);
		w32(GT_STR), w64(d.vocab);
		for (uint32_t i = 0; i < d.vocab; i++) {
			vocab_piece(i, piece, &type);
			wstr(piece);
		}
		key("tokenizer.ggml.scores", GT_ARR);
		w32(GT_F32), w64(d.vocab);
		for (uint32_t i = 0; i < d.vocab; i++)
			wf32(i < N_SPECIAL + 256 ? 0.0f : -(float)(i - N_SPECIAL - 256) / 1000.0f);
		key("tokenizer.ggml.token_type", GT_ARR);
		w32(GT_I32), w64(d.vocab);
		for (uint32_t i = 0; i < d.vocab; i++) {
			vocab_piece(i, piece, &type);
			w32((uint32_t)type);
		}
	}
	kv_u32("tokenizer.ggml.unknown_token_id", 0);
	kv_u32("tokenizer.ggml.bos_token_id", 1);
	kv_u32("tokenizer.ggml.eos_token_id", 2);
	kv_u32("tokenizer.ggml.eot_token_id", 4);
	kv_bool("tokenizer.ggml.add_bos_token", true);
	kv_bool("tokenizer.ggml.add_eos_token", false);
	kv_str("tokenizer.chat_template", CHAT_TEMPLATE);
	if (n_kv_done != n_kv) {
		fprintf(stderr, "gguf-writer: internal error: wrote %" PRIu64 " keys, header says %" PRIu64 "\n", n_kv_done, n_kv);
		return 1;
	}

	for (size_t i = 0; i < nt; i++) {
		wstr(ts[i].name);
		w32(ts[i].ndim);
		for (uint32_t j = 0; j < ts[i].ndim; j++)
			w64(ts[i].ne[j]);
		w32(ts[i].type);
		w64(ts[i].offset);
	}
	wpad();
	uint64_t data0 = written;
	for (size_t i = 0; i < nt; i++) {
		if (written - data0 != ts[i].offset) {
			fprintf(stderr, "gguf-writer: internal error: %s at %" PRIu64 ", expected %" PRIu64 "\n",
				ts[i].name, written - data0, ts[i].offset);
			return 1;
		}
		write_tensor(&ts[i], seed);
		wpad();
	}
	if (fclose(out) != 0)
		werr = true;
	if (werr) {
		fprintf(stderr, "gguf-writer: writing %s failed: %s\n", tmp, strerror(errno));
		remove(tmp);
		return 1;
	}
	if (rename(tmp, path) != 0) {
		fprintf(stderr, "gguf-writer: cannot rename %s to %s: %s\n", tmp, path, strerror(errno));
		remove(tmp);
		return 1;
	}
	printf("wrote %s: %" PRIu64 " bytes, %zu tensors\n", path, written, nt);
	free(tmp);
	free(ts);
	return 0;
}
