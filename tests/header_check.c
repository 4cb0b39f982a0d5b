/* Compiled (not run) by CTest as C89, C99 and C++ with -Wall -Wextra -pedantic -Werror. */
#include <imp/imp.h>

int main(void) {
    imp_model_params mp = imp_model_default_params();
    imp_context_params cp = imp_context_default_params();
    (void)mp;
    (void)cp;
    return imp_last_error() == 0;
}
