/*
 * test_throttle.c - rate parsing, token buckets, daily caps, the adaptive
 * window and retry delays (engine/throttle.h), all on a fake clock: every
 * function takes the time in ms, so the tests just pass numbers.
 */
#include "cunit_main.h"

#include "throttle.h"

#include <limits.h>

#include <stdint.h>
#include <string.h>

#define DAY 86400000ULL
/* 2026-11-22T08:15:00Z: a realistic clock, far from 0. */
#define T0 1795335300000ULL

/* ---- throttle_parse_rate ---- */

static void test_parse_units(void)
{
	static const struct {
		const char *s;
		double want;
	} ok[] = {
		{ "20/s", 20 }, { "20", 20 }, { "10/m", 10.0 / 60 },
		{ "500/h", 500.0 / 3600 }, { "50000/d", 50000.0 / 86400 },
		{ "1/d", 1.0 / 86400 }, { "0.5/s", 0.5 }, { ".25", 0.25 },
		{ "600/m", 10 }, { "007/s", 7 }, { "3.", 3 },
	};

	for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
		double v = -1;
		int rc = throttle_parse_rate(ok[i].s, &v);

		check(rc == 0 && v - ok[i].want < 1e-12 &&
		      ok[i].want - v < 1e-12, __LINE__,
		      "'%s': rc %d value %.17g, want %.17g", ok[i].s, rc, v,
		      ok[i].want);
	}
}

static void test_parse_unlimited(void)
{
	static const char *const zero[] = { "0", "0/s", "0/d", "0.0",
	                                    "unlimited" };

	for (size_t i = 0; i < sizeof zero / sizeof *zero; i++) {
		double v = 99;
		int rc = throttle_parse_rate(zero[i], &v);

		check(rc == 0 && v == 0, __LINE__, "'%s': rc %d value %g",
		      zero[i], rc, v);
	}
}

static void test_parse_garbage(void)
{
	static const char *const bad[] = {
		"", "/s", "abc", "-1", "-1/s", "+5", "20/", "20/x", "20/w",
		"20/ms", "20/sec", "20/S", "20 /s", " 20", "20 ", "20/s ",
		"20s", "1e3", "0x10", "inf", "nan", "Unlimited", "unlimitedx",
		"20/s/s", "1..2", ".", "20//s", "5/m junk",
	};
	double v;

	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		v = 42;
		check(throttle_parse_rate(bad[i], &v) == -1 && v == 42, __LINE__,
		      "'%s' accepted as %g", bad[i], v);
	}
	CU_ASSERT_EQUAL(throttle_parse_rate(NULL, &v), -1);
}

static void test_parse_overflow(void)
{
	char big[400];
	double v = 7;

	memset(big, '9', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	/* 399 nines overflow a double to infinity: not a rate. */
	CU_ASSERT_EQUAL(throttle_parse_rate(big, &v), -1);
	CU_ASSERT_EQUAL(v, 7);
}

/* ---- token bucket ---- */

static void test_bucket_init_burst(void)
{
	struct tbucket b;

	tbucket_init(&b, 20, 0, T0);
	CU_ASSERT_EQUAL(b.burst, 20);
	CU_ASSERT_EQUAL(b.tokens, 20);
	tbucket_init(&b, 0.1, 0, T0);
	CU_ASSERT_EQUAL(b.burst, 1); /* one second's worth, at least 1 */
	tbucket_init(&b, 5, 50, T0);
	CU_ASSERT_EQUAL(b.burst, 50);
	CU_ASSERT_EQUAL(b.tokens, 50);
	tbucket_init(&b, 0, 0, T0);
	CU_ASSERT_EQUAL(b.burst, 1);
	CU_ASSERT_EQUAL(b.rate, 0);
	tbucket_init(&b, -3, -1, T0); /* nonsense reads as unlimited */
	CU_ASSERT_EQUAL(b.rate, 0);
	CU_ASSERT(b.burst >= 1);
}

static void test_bucket_unlimited(void)
{
	struct tbucket b;

	tbucket_init(&b, 0, 0, T0);
	for (int i = 0; i < 100000; i++)
		if (!tbucket_take(&b, T0)) {
			check(0, __LINE__, "unlimited refused take %d", i);
			return;
		}
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0), 0);
}

/* Drain a full bucket at a frozen clock: exactly 'burst' takes succeed. */
static void test_bucket_burst_then_empty(void)
{
	struct tbucket b;
	int n = 0;

	tbucket_init(&b, 10, 0, T0);
	while (n < 100 && tbucket_take(&b, T0))
		n++;
	CU_ASSERT_EQUAL(n, 10);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0), 100);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 + 99), 0);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0 + 99), 1);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 + 100), 1);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 + 100), 0);
}

/* tbucket_whole counts without taking, follows refill and takes. */
static void test_bucket_whole(void)
{
	struct tbucket b;

	tbucket_init(&b, 0, 0, T0);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0), UINT_MAX);
	tbucket_init(&b, 2, 5, T0);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0), 5);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0), 5); /* nothing taken */
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(tbucket_take(&b, T0), 1);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0), 0);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0 + 499), 0);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0 + 500), 1);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0 + 1999), 3);
	CU_ASSERT_EQUAL(tbucket_whole(&b, T0 + 100000), 5); /* capped */
}

static void test_bucket_burst_bigger_than_rate(void)
{
	struct tbucket b;
	int n = 0;

	tbucket_init(&b, 2, 50, T0);
	while (n < 1000 && tbucket_take(&b, T0))
		n++;
	CU_ASSERT_EQUAL(n, 50);
	/* An hour idle refills to the burst, never beyond. */
	n = 0;
	while (n < 1000 && tbucket_take(&b, T0 + 3600000))
		n++;
	CU_ASSERT_EQUAL(n, 50);
}

/*
 * wait_ms is exact: for awkward rates, after every take the bucket
 * refuses at now + wait - 1 and accepts at now + wait. Checked on copies,
 * so the probe does not change the bucket under test.
 */
static void test_bucket_wait_exact(void)
{
	static const double rates[] = { 3, 7, 0.3, 1000, 1500, 33.3,
	                                1.0 / 60, 1.0 / 86400 };

	for (size_t i = 0; i < sizeof rates / sizeof *rates; i++) {
		struct tbucket b;
		uint64_t now = T0;

		tbucket_init(&b, rates[i], 0, now);
		for (int k = 0; k < 50; k++) {
			uint64_t w = tbucket_wait_ms(&b, now);
			struct tbucket early = b, late = b;

			if (w > 0 && tbucket_take(&early, now + w - 1)) {
				check(0, __LINE__, "rate %g take %d: token at "
				      "wait-1 (%llu)", rates[i], k,
				      (unsigned long long)w);
				break;
			}
			if (!tbucket_take(&late, now + w)) {
				check(0, __LINE__, "rate %g take %d: no token "
				      "after wait %llu", rates[i], k,
				      (unsigned long long)w);
				break;
			}
			now += w;
			CU_ASSERT_FATAL(tbucket_take(&b, now) == 1);
		}
	}
}

/* Rate 3/s: 1000/3 ms per token; the wait rounds up to whole ms. */
static void test_bucket_wait_rounds_up(void)
{
	struct tbucket b;

	tbucket_init(&b, 3, 1, T0);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0), 1);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0), 334);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0 + 300), 34);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0 + 334), 0);
}

/* Over a long run the bucket lets through rate * time + burst, not more. */
static void test_bucket_long_run_rate(void)
{
	struct tbucket b;
	uint64_t now = T0, end = T0 + 60000;
	unsigned n = 0;

	tbucket_init(&b, 20, 0, now);
	while (now <= end) {
		if (tbucket_take(&b, now))
			n++;
		else
			now += tbucket_wait_ms(&b, now);
	}
	/* 20 burst + 20/s * 60 s */
	CU_ASSERT_EQUAL(n, 20 + 1200);
}

static void test_bucket_tiny_rate(void)
{
	struct tbucket b;
	double r;

	CU_ASSERT_EQUAL_FATAL(throttle_parse_rate("1/d", &r), 0);
	tbucket_init(&b, r, 0, T0);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0), 1);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 + 1000), 0);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0), DAY);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 + DAY - 1), 0);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 + DAY), 1);
}

/* A rate so small the wait would not fit a clock: UINT64_MAX, no UB. */
static void test_bucket_absurd_rate(void)
{
	struct tbucket b;

	tbucket_init(&b, 1e-300, 0, T0);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0), 1);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0), UINT64_MAX);
	CU_ASSERT_EQUAL(tbucket_take(&b, UINT64_MAX), 0);
}

static void test_bucket_time_backwards(void)
{
	struct tbucket b;
	double before;
	uint64_t w;

	tbucket_init(&b, 10, 0, T0);
	while (tbucket_take(&b, T0))
		;
	before = b.tokens;
	/* The clock steps back 5 s: no tokens appear, nothing crashes. */
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 - 5000), 0);
	CU_ASSERT(b.tokens <= before);
	w = tbucket_wait_ms(&b, T0 - 5000);
	CU_ASSERT_EQUAL(w, 100);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 - 5000 + w - 1), 0);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 - 5000 + w), 1);
	/* Back to the old clock: only the 100 ms since the re-base count, not
	 * the 5 s already behind us. */
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 - 4800), 1);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 - 4800), 0);
	/* A clock behind last_ms without a take: wait counts from last_ms. */
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0 - 4900), 200);
	/* Backwards to 0 is fine too. */
	CU_ASSERT_EQUAL(tbucket_take(&b, 0), 0);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, 0), 100);
}

static void test_bucket_set_rate(void)
{
	struct tbucket b;
	int n = 0;

	tbucket_init(&b, 10, 0, T0);
	for (int i = 0; i < 5; i++)
		CU_ASSERT(tbucket_take(&b, T0));
	/* Halve the rate: the 5 tokens left stay. */
	tbucket_set_rate(&b, 5, T0);
	CU_ASSERT_EQUAL(b.rate, 5);
	while (n < 100 && tbucket_take(&b, T0))
		n++;
	CU_ASSERT_EQUAL(n, 5);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0), 200);
	/* Tokens earned before a change count at the old rate. */
	tbucket_set_rate(&b, 1, T0 + 100); /* 0.5 token at 5/s */
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0 + 100), 500);
	/* To unlimited and back. */
	tbucket_set_rate(&b, 0, T0 + 100);
	CU_ASSERT_EQUAL(tbucket_take(&b, T0 + 100), 1);
	CU_ASSERT_EQUAL(tbucket_wait_ms(&b, T0 + 100), 0);
	tbucket_set_rate(&b, 10, T0 + 200);
	CU_ASSERT(b.tokens <= b.burst);
}

/* A long idle with a big rate never overflows the burst. */
static void test_bucket_cap_after_idle(void)
{
	struct tbucket b;

	tbucket_init(&b, 1e6, 3, 0);
	CU_ASSERT_EQUAL(tbucket_take(&b, 0), 1);
	CU_ASSERT_EQUAL(tbucket_take(&b, UINT64_MAX / 2), 1);
	CU_ASSERT_EQUAL(b.tokens, 2);
}

/* ---- daily cap ---- */

static void test_daily_cap(void)
{
	struct tdaily d = { .limit = 3 };
	uint64_t day0 = (T0 / DAY) * DAY;

	CU_ASSERT_EQUAL(tdaily_wait_ms(&d, T0), 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(tdaily_take(&d, T0 + (uint64_t)i), 1);
	CU_ASSERT_EQUAL(tdaily_take(&d, T0 + 10), 0);
	CU_ASSERT_EQUAL(d.count, 3);
	CU_ASSERT_EQUAL(tdaily_wait_ms(&d, T0), day0 + DAY - T0);
	/* 23:59:59.999 UTC is still the same day. */
	CU_ASSERT_EQUAL(tdaily_take(&d, day0 + DAY - 1), 0);
	CU_ASSERT_EQUAL(tdaily_wait_ms(&d, day0 + DAY - 1), 1);
	/* Midnight UTC resets. */
	CU_ASSERT_EQUAL(tdaily_wait_ms(&d, day0 + DAY), 0);
	CU_ASSERT_EQUAL(tdaily_take(&d, day0 + DAY), 1);
	CU_ASSERT_EQUAL(d.count, 1);
	CU_ASSERT_EQUAL(d.day, (int64_t)(day0 / DAY) + 1);
}

static void test_daily_unlimited(void)
{
	struct tdaily d = { .limit = 0 };

	for (int i = 0; i < 1000; i++)
		CU_ASSERT_FATAL(tdaily_take(&d, T0) == 1);
	CU_ASSERT_EQUAL(tdaily_wait_ms(&d, T0), 0);
}

static void test_daily_time_backwards(void)
{
	struct tdaily d = { .limit = 2 };
	uint64_t day1 = (T0 / DAY + 1) * DAY;

	CU_ASSERT_EQUAL(tdaily_take(&d, day1 + 5), 1);
	CU_ASSERT_EQUAL(tdaily_take(&d, day1 + 6), 1);
	/* Stepped back into yesterday: no fresh allowance. */
	CU_ASSERT_EQUAL(tdaily_take(&d, day1 - 1000), 0);
	CU_ASSERT_EQUAL(tdaily_wait_ms(&d, day1 - 1000), DAY + 1000);
	CU_ASSERT_EQUAL(tdaily_take(&d, day1 + DAY), 1);
}

/* ---- adaptive window ---- */

static const struct twindow_policy pol = {
	.period_ms = 60000, .pause_ms = 30000, .cohort = 50,
};

static void test_window_init(void)
{
	struct twindow w;

	memset(&w, 0xa5, sizeof w);
	twindow_init(&w);
	CU_ASSERT_EQUAL(w.factor, 1);
	CU_ASSERT_EQUAL(w.cuts, 0);
	CU_ASSERT_EQUAL(w.successes, 0);
	CU_ASSERT_EQUAL(twindow_paused(&w, T0), 0);
	CU_ASSERT_EQUAL(twindow_scale(&w, 10), 10);
	CU_ASSERT_EQUAL(twindow_success(&w, &pol), 0); /* already open */
}

static void test_window_cut_once_per_period(void)
{
	struct twindow w;

	twindow_init(&w);
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &pol, T0), 1);
	CU_ASSERT_EQUAL(w.factor, 0.5);
	/* Ten connections hear the same 421: one cut. */
	for (int i = 1; i <= 10; i++)
		CU_ASSERT_EQUAL(twindow_slowdown(&w, &pol, T0 + (uint64_t)i * 1000), 0);
	CU_ASSERT_EQUAL(w.factor, 0.5);
	CU_ASSERT_EQUAL(w.cuts, 1);
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &pol, T0 + 59999), 0);
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &pol, T0 + 60000), 1);
	CU_ASSERT_EQUAL(w.factor, 0.25);
	CU_ASSERT_EQUAL(w.cuts, 2);
	CU_ASSERT_EQUAL(w.last_cut_ms, T0 + 60000);
}

static void test_window_pause(void)
{
	struct twindow w;

	twindow_init(&w);
	twindow_slowdown(&w, &pol, T0);
	CU_ASSERT_EQUAL(twindow_paused(&w, T0), 1);
	CU_ASSERT_EQUAL(twindow_paused(&w, T0 + 29999), 1);
	CU_ASSERT_EQUAL(twindow_paused(&w, T0 + 30000), 0);
	/* A slow-down within the period (no cut) still extends the pause. */
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &pol, T0 + 20000), 0);
	CU_ASSERT_EQUAL(twindow_paused(&w, T0 + 49999), 1);
	CU_ASSERT_EQUAL(twindow_paused(&w, T0 + 50000), 0);
	/* An earlier clock never shortens it. */
	twindow_slowdown(&w, &pol, T0 - 100000);
	CU_ASSERT_EQUAL(w.paused_until, T0 + 50000);
}

static void test_window_floor(void)
{
	struct twindow w;
	uint64_t now = 0; /* a fake clock starting at 0 cuts at 0 */
	int cuts = 0;

	twindow_init(&w);
	for (int i = 0; i < 20; i++, now += pol.period_ms)
		cuts += twindow_slowdown(&w, &pol, now);
	CU_ASSERT_EQUAL(cuts, 6);
	CU_ASSERT_EQUAL(w.factor, 1.0 / 64);
	CU_ASSERT_EQUAL(twindow_scale(&w, 640), 10);
	CU_ASSERT_EQUAL(twindow_scale(&w, 10), 1); /* at least 1 */
	CU_ASSERT_EQUAL(twindow_scale(&w, 0), 0);
}

static void test_window_growth(void)
{
	struct twindow w;
	int grew = 0;

	twindow_init(&w);
	for (uint64_t t = 0; t < 3 * pol.period_ms; t += pol.period_ms)
		twindow_slowdown(&w, &pol, t);
	CU_ASSERT_EQUAL(w.factor, 0.125);
	for (unsigned i = 1; i < pol.cohort; i++)
		grew += twindow_success(&w, &pol);
	CU_ASSERT_EQUAL(grew, 0);
	CU_ASSERT_EQUAL(w.successes, pol.cohort - 1);
	CU_ASSERT_EQUAL(twindow_success(&w, &pol), 1);
	CU_ASSERT_EQUAL(w.factor, 0.375); /* + a quarter of the configured */
	CU_ASSERT_EQUAL(w.successes, 0);
	/* A slow-down resets the cohort's count. */
	for (int i = 0; i < 10; i++)
		twindow_success(&w, &pol);
	twindow_slowdown(&w, &pol, 2 * pol.period_ms + 1); /* within period */
	CU_ASSERT_EQUAL(w.successes, 0);
	CU_ASSERT_EQUAL(w.factor, 0.375);
	/* Then up to 1, never beyond. */
	grew = 0;
	for (int i = 0; i < 1000; i++)
		grew += twindow_success(&w, &pol);
	CU_ASSERT_EQUAL(grew, 3); /* 0.375 -> 0.625 -> 0.875 -> 1 */
	CU_ASSERT_EQUAL(w.factor, 1);
	CU_ASSERT_EQUAL(twindow_scale(&w, 7), 7);
}

static void test_window_cohort_zero(void)
{
	struct twindow w;
	struct twindow_policy p = { .period_ms = 0, .pause_ms = 0, .cohort = 0 };

	twindow_init(&w);
	/* period 0: every slow-down cuts; pause 0: never paused. */
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &p, T0), 1);
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &p, T0), 1);
	CU_ASSERT_EQUAL(twindow_paused(&w, T0), 0);
	CU_ASSERT_EQUAL(w.factor, 0.25);
	CU_ASSERT_EQUAL(twindow_success(&w, &p), 1); /* cohort 0 = 1 */
	CU_ASSERT_EQUAL(w.factor, 0.5);
}

static void test_window_time_backwards(void)
{
	struct twindow w;

	twindow_init(&w);
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &pol, T0), 1);
	/* A clock behind the last cut counts as within the period. */
	CU_ASSERT_EQUAL(twindow_slowdown(&w, &pol, T0 - 3600000), 0);
	CU_ASSERT_EQUAL(w.factor, 0.5);
}

static void test_window_scale_rounding(void)
{
	struct twindow w;

	twindow_init(&w);
	w.factor = 0.5;
	CU_ASSERT_EQUAL(twindow_scale(&w, 3), 1);
	CU_ASSERT_EQUAL(twindow_scale(&w, 1), 1);
	CU_ASSERT_EQUAL(twindow_scale(&w, 20), 10);
	CU_ASSERT_EQUAL(twindow_scale(&w, 4000000000u), 2000000000u);
}

/* ---- retry delay ---- */

static void test_retry_exponential(void)
{
	const uint64_t first = 300000, max = 3600000;
	static const uint64_t want[] = { 300000, 600000, 1200000, 2400000,
	                                 3600000, 3600000 };

	for (unsigned a = 1; a <= 6; a++)
		check(throttle_retry_delay(a, first, max, 0, 0.5) == want[a - 1],
		      __LINE__, "attempt %u: %llu", a,
		      (unsigned long long)throttle_retry_delay(a, first, max, 0, 0.5));
	CU_ASSERT_EQUAL(throttle_retry_delay(0, first, max, 0, 0), first);
	/* Huge attempt numbers saturate at the cap, no shift overflow. */
	CU_ASSERT_EQUAL(throttle_retry_delay(64, first, max, 0, 0), max);
	CU_ASSERT_EQUAL(throttle_retry_delay(4000000000u, first, max, 0, 0), max);
	CU_ASSERT_EQUAL(throttle_retry_delay(60, first, 0, 0, 0), UINT64_MAX);
}

static void test_retry_jitter(void)
{
	const uint64_t first = 300000, max = 3600000;

	/* +-20 %: r = 0 is the low end, r -> 1 the high end, 0.5 the middle. */
	CU_ASSERT_EQUAL(throttle_retry_delay(1, first, max, 0.2, 0), 240000);
	CU_ASSERT_EQUAL(throttle_retry_delay(1, first, max, 0.2, 0.5), 300000);
	CU_ASSERT_EQUAL(throttle_retry_delay(2, first, max, 0.2, 0.75), 660000);
	CU_ASSERT(throttle_retry_delay(1, first, max, 0.2, 0.999999) <= 360000);
	CU_ASSERT(throttle_retry_delay(1, first, max, 0.2, 0.999999) > 359990);
	/* Beyond the cap by the jitter only. */
	CU_ASSERT_EQUAL(throttle_retry_delay(10, first, max, 0.2, 0), 2880000);
	/* Every r in [0,1) stays within [first*(1-j), max*(1+j)]. */
	for (int i = 0; i < 1000; i++) {
		double r = i / 1000.0;

		for (unsigned a = 1; a < 12; a++) {
			uint64_t d = throttle_retry_delay(a, first, max, 0.2, r);

			if (d < 240000 || d > 4320000) {
				check(0, __LINE__, "a %u r %g: %llu", a, r,
				      (unsigned long long)d);
				return;
			}
		}
	}
	/* Out-of-range jitter and r are clamped. */
	CU_ASSERT_EQUAL(throttle_retry_delay(1, first, max, 5, 0), 0);
	CU_ASSERT_EQUAL(throttle_retry_delay(1, first, max, -1, 0.9), first);
	CU_ASSERT(throttle_retry_delay(1, first, max, 0.2, 7) <= 360000);
	CU_ASSERT_EQUAL(throttle_retry_delay(1, first, max, 0.2, -3), 240000);
}

/* A cap below first_ms still never goes under first_ms minus the jitter. */
static void test_retry_cap_below_first(void)
{
	CU_ASSERT_EQUAL(throttle_retry_delay(3, 300000, 1000, 0, 0.5), 300000);
	CU_ASSERT_EQUAL(throttle_retry_delay(3, 300000, 1000, 0.1, 0), 270000);
}

static const struct test_case tests[] = {
	{ "parse_units", test_parse_units },
	{ "parse_unlimited", test_parse_unlimited },
	{ "parse_garbage", test_parse_garbage },
	{ "parse_overflow", test_parse_overflow },
	{ "bucket_init_burst", test_bucket_init_burst },
	{ "bucket_unlimited", test_bucket_unlimited },
	{ "bucket_burst_then_empty", test_bucket_burst_then_empty },
	{ "bucket_whole", test_bucket_whole },
	{ "bucket_burst_bigger_than_rate", test_bucket_burst_bigger_than_rate },
	{ "bucket_wait_exact", test_bucket_wait_exact },
	{ "bucket_wait_rounds_up", test_bucket_wait_rounds_up },
	{ "bucket_long_run_rate", test_bucket_long_run_rate },
	{ "bucket_tiny_rate", test_bucket_tiny_rate },
	{ "bucket_absurd_rate", test_bucket_absurd_rate },
	{ "bucket_time_backwards", test_bucket_time_backwards },
	{ "bucket_set_rate", test_bucket_set_rate },
	{ "bucket_cap_after_idle", test_bucket_cap_after_idle },
	{ "daily_cap", test_daily_cap },
	{ "daily_unlimited", test_daily_unlimited },
	{ "daily_time_backwards", test_daily_time_backwards },
	{ "window_init", test_window_init },
	{ "window_cut_once_per_period", test_window_cut_once_per_period },
	{ "window_pause", test_window_pause },
	{ "window_floor", test_window_floor },
	{ "window_growth", test_window_growth },
	{ "window_cohort_zero", test_window_cohort_zero },
	{ "window_time_backwards", test_window_time_backwards },
	{ "window_scale_rounding", test_window_scale_rounding },
	{ "retry_exponential", test_retry_exponential },
	{ "retry_jitter", test_retry_jitter },
	{ "retry_cap_below_first", test_retry_cap_below_first },
	{ 0 },
};

int main(void)
{
	return test_run("throttle", tests);
}
