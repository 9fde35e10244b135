/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A minimal TAP test harness for unit and device tests. Each KTEST is one
 * TAP test point, so `make check` counts cases, not binaries.
 *
 *   KTEST(parses_sizes) { KCHECK_EQ(x, 3); }
 *   int main(void) { return ktest_run_all(); }
 *
 * Tests register themselves (a constructor), so adding one edits no list.
 * A failed KCHECK marks the test failed and continues; KASSERT also returns.
 */
#ifndef KEEL_KTEST_H
#define KEEL_KTEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ktest {
	const char *name;
	void (*fn)(void);
	struct ktest *next;
};

extern struct ktest *ktest_list;
extern bool ktest_failed;
void ktest_register(struct ktest *t);
int ktest_run_all(void);

#define KTEST(name)                                                     \
	static void ktest_fn_##name(void);                              \
	static struct ktest ktest_##name = { #name, ktest_fn_##name, 0 }; \
	__attribute__((constructor)) static void ktest_reg_##name(void) \
	{                                                               \
		ktest_register(&ktest_##name);                          \
	}                                                               \
	static void ktest_fn_##name(void)

#define KFAIL(...)                                                         \
	do {                                                               \
		printf("# %s:%d: ", __FILE__, __LINE__);                   \
		printf(__VA_ARGS__);                                       \
		printf("\n");                                              \
		ktest_failed = true;                                       \
	} while (0)

#define KCHECK(cond)                                                       \
	do {                                                               \
		if (!(cond))                                               \
			KFAIL("check failed: %s", #cond);                  \
	} while (0)

#define KASSERT(cond)                                                      \
	do {                                                               \
		if (!(cond)) {                                             \
			KFAIL("assertion failed: %s", #cond);              \
			return;                                            \
		}                                                          \
	} while (0)

#define KCHECK_EQ(a, b)                                                    \
	do {                                                               \
		unsigned long long ka_ = (unsigned long long)(a);          \
		unsigned long long kb_ = (unsigned long long)(b);          \
		if (ka_ != kb_)                                            \
			KFAIL("%s == %s: 0x%llx != 0x%llx", #a, #b, ka_, kb_); \
	} while (0)

#define KCHECK_STR(a, b)                                                   \
	do {                                                               \
		const char *ka_ = (a), *kb_ = (b);                         \
		if (!ka_ || !kb_ || strcmp(ka_, kb_))                      \
			KFAIL("%s == %s: \"%s\" != \"%s\"", #a, #b,        \
			      ka_ ? ka_ : "(null)", kb_ ? kb_ : "(null)"); \
	} while (0)

#endif
