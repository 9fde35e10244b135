// SPDX-License-Identifier: Apache-2.0
#include "ktest.h"

struct ktest *ktest_list;
bool ktest_failed;

void ktest_register(struct ktest *t)
{
	/* Constructors run in reverse link order; append to keep file order. */
	struct ktest **p = &ktest_list;

	while (*p)
		p = &(*p)->next;
	*p = t;
}

int ktest_run_all(void)
{
	const char *only = getenv("KTEST_ONLY");
	unsigned n = 0, failed = 0;
	struct ktest *t;

	for (t = ktest_list; t; t = t->next)
		if (!only || !strcmp(only, t->name))
			n++;
	printf("1..%u\n", n);
	n = 0;
	for (t = ktest_list; t; t = t->next) {
		if (only && strcmp(only, t->name))
			continue;
		ktest_failed = false;
		fflush(stdout);
		t->fn();
		printf("%s %u - %s\n", ktest_failed ? "not ok" : "ok", ++n, t->name);
		fflush(stdout);
		failed += ktest_failed;
	}
	return failed ? 1 : 0;
}
