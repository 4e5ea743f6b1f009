# ERFNet (Romera et al., IEEE T-ITS 2018) from MMSegmentation's zoo at its published size
# (2.07 M parameters) with an FCN head, for CamVid's 11 classes, trained by `frugalbench train`
# from random initialisation (no pretrained weights).
_base_ = ['mmseg::_base_/models/erfnet_fcn.py']

norm_cfg = dict(type='BN', requires_grad=True)
num_classes = 11
crop_size = (256, 256)

model = dict(
    data_preprocessor=dict(size=crop_size),
    decode_head=dict(num_classes=num_classes, norm_cfg=norm_cfg, ignore_index=255,
                     loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False,
                                      loss_weight=1.0, avg_non_ignore=True)),
    test_cfg=dict(mode='whole'))

# Read by `frugalbench train`. A short CPU schedule: about 3 s per iteration on one core (25 min).
train_schedule = dict(
    iters=500, batch_size=8, crop_size=crop_size,
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.01),
    poly_power=0.9, eta_min=1e-5, num_workers=0, checkpoint_interval=100)
