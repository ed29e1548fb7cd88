// The Catch2 main for the model tests: adds `--server PATH`, the stage binary under test.
#include <string>

#include "suite_main.hpp"

std::string g_server;  // the binary under test, for the test cases

int main(int argc, char** argv) {
    return testkit::run_model_tests(argc, argv, g_server);
}
