from ftraceipc.cli import main

main()
