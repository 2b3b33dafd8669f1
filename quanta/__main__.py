from quanta.cli import main

raise SystemExit(main())
