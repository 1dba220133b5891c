/*
 * hset.c - open addressing (linear probing) over 64-bit FNV-1a/murmur-mixed
 * hashes; 0 marks an empty slot (a key hashing to 0 is stored as 1).
 */
#include "hset.h"

#include <stdlib.h>

struct hset {
	uint64_t *slots;
	size_t cap, n;
};

static uint64_t hash64(const unsigned char *p, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	/* murmur3 finaliser: FNV's low bits alone probe badly */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h ? h : 1;
}

struct hset *hset_new(void)
{
	struct hset *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return NULL;
	h->cap = 1024;
	h->slots = calloc(h->cap, sizeof(*h->slots));
	if (h->slots == NULL) {
		free(h);
		return NULL;
	}
	return h;
}

static int grow(struct hset *h)
{
	size_t cap = h->cap * 2;
	uint64_t *s = calloc(cap, sizeof(*s));

	if (s == NULL)
		return -1;
	for (size_t i = 0; i < h->cap; i++) {
		uint64_t v = h->slots[i];
		if (v == 0)
			continue;
		size_t k = v & (cap - 1);
		while (s[k] != 0)
			k = (k + 1) & (cap - 1);
		s[k] = v;
	}
	free(h->slots);
	h->slots = s;
	h->cap = cap;
	return 0;
}

int hset_add(struct hset *h, const void *key, size_t len)
{
	uint64_t v = hash64(key, len);
	size_t k;

	if ((h->n + 1) * 2 > h->cap && grow(h) < 0)
		return -1;
	for (k = v & (h->cap - 1); h->slots[k] != 0; k = (k + 1) & (h->cap - 1))
		if (h->slots[k] == v)
			return 0;
	h->slots[k] = v;
	h->n++;
	return 1;
}

size_t hset_count(const struct hset *h)
{
	return h->n;
}

void hset_free(struct hset *h)
{
	if (h == NULL)
		return;
	free(h->slots);
	free(h);
}
