/*
 * cunit_main.h - the one CUnit runner every tests/test_<module>.c uses.
 *
 * A test file defines its cases and ends with
 *     static const struct test_case tests[] = { {"name", fn}, ..., {0} };
 *     int main(void) { return test_run("module", tests); }
 * test_run() returns the number of failed tests (capped at 125 so the exit
 * status never wraps to 0), which meson reads as pass/fail.
 * EDM_FIXTURES is the absolute path of tests/fixtures (set by meson).
 */
#ifndef EDM_CUNIT_MAIN_H
#define EDM_CUNIT_MAIN_H

#include <CUnit/Basic.h>
#include <CUnit/CUnit.h>
#include <stdarg.h>
#include <stdio.h>

struct test_case {
	const char *name;
	void (*fn)(void);
};

/* Record a CUnit assertion with a message built at run time (CUnit copies
 * the condition text), so a failing case names its input:
 *     check(ok, __LINE__, "case %zu: got %s", i, got); */
static inline void test_check(const char *file, int ok, unsigned line,
                              const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static inline void test_check(const char *file, int ok, unsigned line,
                              const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	CU_assertImplementation(ok ? CU_TRUE : CU_FALSE, line, msg, file, "",
	                        CU_FALSE);
}
#define check(ok, line, ...) test_check(__FILE__, (ok), (line), __VA_ARGS__)

static inline int test_run(const char *suite_name, const struct test_case *t)
{
	CU_pSuite suite;
	unsigned failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 125;
	suite = CU_add_suite(suite_name, NULL, NULL);
	if (suite == NULL)
		goto fail_registry;
	for (; t->name != NULL; t++)
		if (CU_add_test(suite, t->name, t->fn) == NULL)
			goto fail_registry;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = CU_get_number_of_tests_failed();
	if (CU_get_number_of_suites_failed() > 0 && failed == 0)
		failed = 1;
	CU_cleanup_registry();
	return failed > 125 ? 125 : (int)failed;

fail_registry:
	fprintf(stderr, "%s: CUnit setup failed: %s\n", suite_name,
	        CU_get_error_msg());
	CU_cleanup_registry();
	return 125;
}

#endif
