/*
 * test_hset.c - the compact duplicate set of `edm send`.
 */
#include <stdio.h>
#include <string.h>

#include "cunit_main.h"
#include "hset.h"

static void test_add_and_duplicate(void)
{
	struct hset *h = hset_new();

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	CU_ASSERT_EQUAL(hset_add(h, "a@x.test", 8), 1);
	CU_ASSERT_EQUAL(hset_add(h, "a@x.test", 8), 0);
	CU_ASSERT_EQUAL(hset_add(h, "b@x.test", 8), 1);
	CU_ASSERT_EQUAL(hset_add(h, "", 0), 1);
	CU_ASSERT_EQUAL(hset_add(h, "", 0), 0);
	CU_ASSERT_EQUAL(hset_count(h), 3);
	hset_free(h);
	hset_free(NULL);
}

/* 200k keys force many growths; every key stays found, none is lost. */
static void test_growth(void)
{
	struct hset *h = hset_new();
	char k[32];
	size_t bad = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(h);
	for (int i = 0; i < 200000; i++) {
		int n = snprintf(k, sizeof(k), "user%d@d%d.test", i, i % 97);
		if (hset_add(h, k, (size_t)n) != 1)
			bad++;
	}
	for (int i = 0; i < 200000; i++) {
		int n = snprintf(k, sizeof(k), "user%d@d%d.test", i, i % 97);
		if (hset_add(h, k, (size_t)n) != 0)
			bad++;
	}
	check(bad == 0, __LINE__, "%zu keys misreported", bad);
	CU_ASSERT_EQUAL(hset_count(h), 200000);
	hset_free(h);
}

static const struct test_case tests[] = {
	{ "add_and_duplicate", test_add_and_duplicate },
	{ "growth", test_growth },
	{ NULL, NULL },
};

int main(void)
{
	return test_run("hset", tests);
}
