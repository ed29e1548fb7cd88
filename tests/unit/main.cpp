// The Catch2 entry point of iolab_unit_tests. The tests themselves live in the
// other files of this directory, one per part of common/.
//
// Run a subset by tag, e.g. `iolab_unit_tests [http]` or `iolab_unit_tests [security]`.
#include "suite_main.hpp"

int main(int argc, char* argv[]) {
    return testkit::run_unit_tests(argc, argv);
}
