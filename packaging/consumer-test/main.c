/* Built against an installed libimp (find_package(imp) or pkg-config) by packaging/consumer-test/run.sh. */
#include <imp/imp.h>

#include <stdio.h>
#include <string.h>

int main(void) {
    imp_model *model = (imp_model *)1;
    imp_status st;
    if (imp_abi_version() != IMP_ABI_VERSION) {
        fprintf(stderr, "ABI mismatch: header %d, library %d\n", IMP_ABI_VERSION, (int)imp_abi_version());
        return 1;
    }
    st = imp_model_load(&model, "/nonexistent/imp-model", NULL);
    if (st != IMP_ERR_NOT_FOUND || model != NULL || strlen(imp_last_error()) == 0) {
        fprintf(stderr, "unexpected: %s (%s)\n", imp_status_name(st), imp_last_error());
        return 1;
    }
    printf("libimp %s (ABI %d): %s: %s\n", imp_version(), (int)imp_abi_version(), imp_status_name(st),
           imp_last_error());
    return 0;
}
