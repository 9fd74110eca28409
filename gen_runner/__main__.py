from gen_runner.cli import main

main()
