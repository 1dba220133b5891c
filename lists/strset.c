/*
 * strset.c - a set of byte strings: open addressing over an arena.
 *
 * Layout: the string bytes live in an arena of big blocks (STRSET_BLOCK
 * bytes each), every record being a size_t length followed by the bytes, so
 * adding a string costs one memcpy and no malloc in the common case. The
 * table holds 16-byte slots {64-bit hash, pointer to the record}; a NULL
 * record marks an empty slot. Linear probing over a power-of-two table kept
 * at most STRSET_LOAD_NUM/STRSET_LOAD_DEN full, doubled when it would pass
 * that. The full hash is compared before the bytes, so a probe touches the
 * arena only on a real 64-bit hash match.
 *
 * Sizing (the 1,000,000-row dedup benchmark): 1M keys of ~25 bytes need a
 * 2M-slot table (32 MiB) plus ~33 MiB of arena; while doubling, the old
 * table (16 MiB) and the new one coexist for a moment.
 *
 * It does not: remove strings, iterate, or shrink. Not thread-safe.
 */
#include "strset.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Arena block: 1 MiB amortises malloc to one call per ~40,000 addresses
 * while wasting at most one block tail. */
#define STRSET_BLOCK ((size_t)1 << 20)
/* First table size: small sets (role list, a short suppression file) stay
 * small; must be a power of two. */
#define STRSET_INITIAL_SLOTS 64
/* Maximum load 0.7: linear probing stays short (expected ~2 probes for a
 * hit) while the table is at most 1/0.7*2 slots per key after a doubling. */
#define STRSET_LOAD_NUM 7
#define STRSET_LOAD_DEN 10

struct strset_block {
	struct strset_block *next;
	size_t used;
	size_t cap;
	unsigned char data[];
};

struct strset_slot {
	uint64_t hash;
	const unsigned char *rec; /* size_t length, then bytes; NULL: empty */
};

struct strset {
	struct strset_slot *slots;
	size_t mask;   /* number of slots - 1 */
	size_t count;
	struct strset_block *blocks; /* head is the block being filled */
};

/* Multipliers: odd 64-bit constants with roughly half their bits set (the
 * first is 2^64 / golden ratio); oddness makes each multiply a bijection,
 * the bit mix makes it carry low input bits into the high ones. */
#define STRSET_K0 UINT64_C(0x9e3779b97f4a7c15)
#define STRSET_K1 UINT64_C(0xc2b2ae3d27d4eb4f)
#define STRSET_K2 UINT64_C(0xd6e8feb86659fd93)

static inline uint64_t strset_rotl(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

/* Unaligned native-endian 8-byte load; memcpy compiles to one mov. */
static inline uint64_t strset_load64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

/* Hash a byte string, 8 bytes per step: each word is multiplied in, the
 * state rotated and multiplied, then a xor-shift-multiply finaliser spreads
 * the high bits down, since the table index takes the low bits. The length
 * is folded in so strings differing only by trailing NUL bytes differ. */
static uint64_t strset_hash(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint64_t h = STRSET_K0 ^ ((uint64_t)len * STRSET_K1);
	uint64_t w;

	while (len >= 8) {
		w = strset_load64(p) * STRSET_K1;
		h ^= strset_rotl(w, 31);
		h = strset_rotl(h, 27) * STRSET_K0 + STRSET_K2;
		p += 8;
		len -= 8;
	}
	if (len > 0) {
		w = 0;
		memcpy(&w, p, len);
		w *= STRSET_K1;
		h ^= strset_rotl(w, 31);
		h = strset_rotl(h, 27) * STRSET_K0 + STRSET_K2;
	}
	h ^= h >> 32;
	h *= STRSET_K2;
	h ^= h >> 29;
	h *= STRSET_K0;
	h ^= h >> 32;
	return h;
}

static inline size_t strset_rec_len(const unsigned char *rec)
{
	size_t n;

	memcpy(&n, rec, sizeof n);
	return n;
}

/* Find the slot holding s[len] or the empty slot where it would go. */
static struct strset_slot *strset_find(const struct strset *set, uint64_t h,
                                       const char *s, size_t len)
{
	size_t i = (size_t)h & set->mask;
	struct strset_slot *sl;

	for (;;) {
		sl = &set->slots[i];
		if (sl->rec == NULL)
			return sl;
		if (sl->hash == h && strset_rec_len(sl->rec) == len &&
		    (len == 0 ||
		     memcmp(sl->rec + sizeof(size_t), s, len) == 0))
			return sl;
		i = (i + 1) & set->mask;
	}
}

struct strset *strset_new(void)
{
	struct strset *set;

	set = calloc(1, sizeof *set);
	if (set == NULL)
		return NULL;
	set->slots = calloc(STRSET_INITIAL_SLOTS, sizeof *set->slots);
	if (set->slots == NULL) {
		free(set);
		return NULL;
	}
	set->mask = STRSET_INITIAL_SLOTS - 1;
	return set;
}

/* Double the table and re-insert every record by its stored hash (the
 * strings are not rehashed and the arena does not move). */
static int strset_grow(struct strset *set)
{
	size_t oldn = set->mask + 1, newn = oldn * 2, i, j;
	struct strset_slot *old = set->slots, *slots;

	if (newn > SIZE_MAX / sizeof *slots)
		return -1;
	slots = calloc(newn, sizeof *slots);
	if (slots == NULL)
		return -1;
	for (i = 0; i < oldn; i++) {
		if (old[i].rec == NULL)
			continue;
		j = (size_t)old[i].hash & (newn - 1);
		while (slots[j].rec != NULL)
			j = (j + 1) & (newn - 1);
		slots[j] = old[i];
	}
	free(old);
	set->slots = slots;
	set->mask = newn - 1;
	return 0;
}

/* Copy s[len] into the arena as a record; NULL on ENOMEM. A string larger
 * than a block gets a block of its own, linked behind the current one so
 * the current block's free tail is not abandoned. */
static const unsigned char *strset_arena_put(struct strset *set,
                                             const char *s, size_t len)
{
	struct strset_block *b = set->blocks, *nb;
	size_t need, cap;
	unsigned char *rec;

	if (len > SIZE_MAX - sizeof(size_t) - sizeof *b)
		return NULL;
	need = sizeof(size_t) + len;
	if (b == NULL || b->cap - b->used < need) {
		cap = need > STRSET_BLOCK ? need : STRSET_BLOCK;
		nb = malloc(sizeof *nb + cap);
		if (nb == NULL)
			return NULL;
		nb->used = 0;
		nb->cap = cap;
		if (b != NULL && cap > STRSET_BLOCK) {
			nb->next = b->next;
			b->next = nb;
		} else {
			nb->next = b;
			set->blocks = nb;
		}
		b = nb;
	}
	rec = b->data + b->used;
	memcpy(rec, &len, sizeof len);
	if (len > 0)
		memcpy(rec + sizeof len, s, len);
	b->used += need;
	return rec;
}

int strset_add(struct strset *set, const char *s, size_t len)
{
	uint64_t h = strset_hash(s, len);
	struct strset_slot *sl;
	const unsigned char *rec;

	sl = strset_find(set, h, s, len);
	if (sl->rec != NULL)
		return 0;
	/* Grow before inserting when the new count would pass the load
	 * factor; the slot found above is then stale, so search again. */
	if ((set->count + 1) * STRSET_LOAD_DEN >
	    (set->mask + 1) * STRSET_LOAD_NUM) {
		if (strset_grow(set) < 0)
			return -1;
		sl = strset_find(set, h, s, len);
	}
	rec = strset_arena_put(set, s, len);
	if (rec == NULL)
		return -1;
	sl->hash = h;
	sl->rec = rec;
	set->count++;
	return 1;
}

int strset_has(const struct strset *set, const char *s, size_t len)
{
	return strset_find(set, strset_hash(s, len), s, len)->rec != NULL;
}

size_t strset_count(const struct strset *set)
{
	return set->count;
}

void strset_free(struct strset *set)
{
	struct strset_block *b, *next;

	if (set == NULL)
		return;
	for (b = set->blocks; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(set->slots);
	free(set);
}
