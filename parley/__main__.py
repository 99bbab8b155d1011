try:
    from parley.cli import main
except KeyboardInterrupt:  # Ctrl-C while Python still imports: no traceback
    raise SystemExit(130) from None

main()
