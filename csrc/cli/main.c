/* main.c: the ./darknet binary, Darknet's command line. The only code that exits. */
#include "darknet.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <function>\n", argv[0]);
        return 1;
    }
    fprintf(stderr, "Not an option: %s\n", argv[1]);
    return 1;
}
