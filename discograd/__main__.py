from discograd.cli import main

main()
