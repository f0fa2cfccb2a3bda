from stringcare.cli import main

raise SystemExit(main())
