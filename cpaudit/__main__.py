from cpaudit.cli import main

raise SystemExit(main())
