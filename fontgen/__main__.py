from fontgen.cli import main

main()
