/*
 * hset.h - a compact set of 64-bit hashes (the duplicate set of `edm send`:
 * 8 bytes per address at load <= 1/2, not the address strings). Two
 * different addresses collide with probability ~n^2/2^65: for 10 million
 * addresses about 3e-6, and a collision only marks one row a duplicate.
 */
#ifndef EDM_HSET_H
#define EDM_HSET_H

#include <stddef.h>
#include <stdint.h>

struct hset;

struct hset *hset_new(void);
/* 1 added, 0 already present, -1 out of memory. */
int hset_add(struct hset *h, const void *key, size_t len);
size_t hset_count(const struct hset *h);
/* NULL is a no-op. */
void hset_free(struct hset *h);

#endif
